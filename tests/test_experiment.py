"""A training job with the experiment flags on: validation split, early stopping, TensorBoard events, export."""

import json
from pathlib import Path

import pytest
import tensorflow as tf

from engine.app import job
from engine.run.config import TrainConfig
from engine.errors import ConfigError
from tests.conftest import mnist_subset


@pytest.fixture(scope="module")
def small_mnist_dir(tmp_path_factory, mnist_t10k_dir) -> Path:
    """Real MNIST digits laid out as a full data set: 1,000 train and 200 test images from t10k."""
    return mnist_subset(mnist_t10k_dir, tmp_path_factory.mktemp("small_mnist"), train=1000, test=200)


def read_events(log_dir: Path) -> dict:
    """{tag: {step: value}}; a scalar is a float, a histogram its [buckets, 3] (left, right, count) array."""
    found: dict = {}
    for path in log_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, {})[event.step] = float(array) if array.ndim == 0 else array
    return found


@pytest.fixture(scope="module")
def finished_job(small_mnist_dir, tmp_path_factory):
    """One real run: 20% of the train set held out, a min_delta no gain can beat (so epoch 1 stays best and
    patience 1 stops after epoch 2 of 5), TensorBoard on, export on."""
    out = tmp_path_factory.mktemp("job")
    config = TrainConfig(dataset="mnist", data_dir=str(small_mnist_dir), tfds_dir=str(out / "tfds"), epochs=5,
                         hidden=(16,), learning_rate=0.05, mode="graph", steps_per_execution=8,
                         output_dir=str(out / "run"), tensorboard_dir=str(out / "tb"), early_stopping_patience=1,
                         early_stopping_min_delta=100.0, validation_split=0.2, export_dir=str(out / "export"))
    lines: list = []
    return out, job.run(config, print_fn=lines.append), lines


def test_validation_uses_the_held_out_fifth_of_the_training_set_not_the_test_set(finished_job):
    out, results, lines = finished_job
    assert "Validation: the last 200 of 1,000 training images (--validation_split=0.2)" in "\n".join(lines)
    assert results["epochs"][0]["val_accuracy"] != pytest.approx(results["test"]["accuracy"])


def test_early_stopping_stops_after_patience_and_the_final_model_is_the_best_epochs(finished_job):
    out, results, lines = finished_job
    assert [e["epoch"] for e in results["epochs"]] == [1, 2]
    assert results["early_stopping"] == {"stopped_epoch": 2, "best_epoch": 1,
                                         "best_val_loss": results["epochs"][0]["val_loss"]}
    assert json.loads((out / "run" / "history.json").read_text())["early_stopping"]["best_epoch"] == 1
    assert any(line.startswith("Early stopping (val_loss, patience 1, min_delta 100): stopped after epoch 2; "
                               "best val_loss") for line in lines)


def test_rerunning_an_early_stopped_run_resumes_to_its_end_and_trains_nothing_more(finished_job, small_mnist_dir):
    out, results, _ = finished_job
    config = TrainConfig(dataset="mnist", data_dir=str(small_mnist_dir), tfds_dir=str(out / "tfds"), epochs=5,
                         hidden=(16,), learning_rate=0.05, mode="graph", steps_per_execution=8,
                         output_dir=str(out / "run"), early_stopping_patience=1, early_stopping_min_delta=100.0,
                         validation_split=0.2)
    lines: list = []
    rerun = job.run(config, print_fn=lines.append)
    assert "already stopped early after epoch 2: nothing left to train; its best weights are restored" in "\n".join(lines)
    assert not any(line.startswith("Epoch ") for line in lines)
    assert rerun["epochs"] == results["epochs"]
    assert rerun["test"] == results["test"]


def test_tensorboard_events_hold_every_scalar_and_a_histogram_of_every_weight_per_epoch(finished_job):
    out, results, _ = finished_job
    events = read_events(out / "tb")
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "steps_per_second"):
        assert events[name] == pytest.approx({e["epoch"]: e[name] for e in results["epochs"]}, rel=1e-6), name
    assert events["learning_rate"] == pytest.approx({1: 0.05, 2: 0.05})
    weights = sorted(tag for tag in events if tag.endswith(("/kernel", "/bias")))
    assert len(weights) == 4, weights  # two Dense layers, kernel and bias each
    kernel = next(tag for tag in weights if tag.endswith("kernel"))
    counts = events[kernel][1][:, 2]
    assert set(events[kernel]) == {1, 2} and counts.sum() == pytest.approx(784 * 16)


def test_export_writes_the_saved_model_the_tflite_file_and_the_labels(finished_job):
    out, _, lines = finished_job
    export = out / "export"
    assert (export / "saved_model" / "saved_model.pb").is_file()
    assert (export / "model.tflite").read_bytes()[4:8] == b"TFL3"
    assert (export / "labels.txt").read_text().splitlines() == [str(digit) for digit in range(10)]
    assert f"Exported {export}/saved_model, {export}/model.tflite and {export}/labels.txt" in lines


@pytest.mark.parametrize("changes, message", [
    ({"early_stopping_patience": -1}, "--early_stopping_patience must be >= 0 (0 is off), got -1"),
    ({"early_stopping_min_delta": -1.0}, "--early_stopping_min_delta must be >= 0, got -1.0"),
    ({"early_stopping_monitor": "loss"}, "--early_stopping_monitor must be one of val_loss, val_accuracy, got 'loss'"),
    ({"validation_split": 1.0}, "--validation_split must be in [0, 1), got 1.0"),
    ({"early_stopping_patience": 3, "validate_on_test": False}, "--early_stopping_patience needs validation data"),
])
def test_bad_experiment_settings_are_one_clear_config_error(changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("(", "\\(").replace(")", "\\)")):
        TrainConfig(**changes)


def test_an_export_dir_that_is_a_file_fails_before_training(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ConfigError, match="--export_dir .*taken is a file, not a directory"):
        job.run(TrainConfig(output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "taken")), print_fn=print)


@pytest.mark.parametrize("flags, message", [
    (["--early_stopping_patience=2", "--novalidate_on_test"], "--early_stopping_patience needs validation data"),
    (["--early_stopping_monitor=accuracy"], "flag --early_stopping_monitor=accuracy: value should be one of "
     "<val_loss|val_accuracy>"),
    (["--validation_split=-0.1"], "--validation_split must be in [0, 1), got -0.1"),
    (["--early_stopping_min_delta=-1"], "flag --early_stopping_min_delta=-1: -1.0 is not a non-negative number"),
])
def test_train_py_passes_the_experiment_flags_to_the_config_and_refuses_bad_ones_in_one_line(flags, message, tmp_path):
    """Checked before TensorFlow is imported, so each of these runs takes about a second."""
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run([sys.executable, str(REPO / "train.py"), *flags, f"--output_dir={tmp_path}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"train.py: error: {message}")

"""train.py as a user runs it: in a subprocess, on real data, and with every kind of bad flag."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, mnist_subset


def run_train(*flags, cwd=None, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *flags], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout)


def assert_one_clear_error(result, fragment):
    """Exit 2, no traceback, and the last line of stderr is the error naming the problem."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("train.py: error: ") and fragment in last_line, last_line


@pytest.fixture(scope="module")
def small_mnist_dir(tmp_path_factory, mnist_t10k_dir) -> Path:
    """Real MNIST digits laid out as a full data set: 2,000 train and 500 test images from t10k."""
    return mnist_subset(mnist_t10k_dir, tmp_path_factory.mktemp("small_mnist"), train=2000, test=500)


def test_a_short_run_prints_progress_and_writes_history_and_plot(small_mnist_dir, tmp_path):
    out = tmp_path / "run"
    result = run_train("--dataset=mnist", f"--data_dir={small_mnist_dir}", f"--tfds_dir={tmp_path / 'tfds'}",
                       "--epochs=3", "--hidden=64,32", "--learning_rate=0.05", "--momentum=0.9",
                       f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Total params: 52,650" in result.stdout  # 784*64+64 + 64*32+32 + 32*10+10
    assert "Epoch 3/3 - loss" in result.stdout and "val_accuracy" in result.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["hidden"] == [64, 32] and history["config"]["momentum"] == 0.9
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert set(history["epochs"][0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                                         "steps_per_second"}
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]
    assert history["test"]["accuracy"] > 0.8, "2,000 real digits and 3 epochs reach well over 80%"
    assert history["test"]["accuracy"] == pytest.approx(history["epochs"][-1]["val_accuracy"])
    png = (out / "metrics.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.parametrize("flag, fragment", [
    ("--batch_size=0", "flag --batch_size=0: 0 is not a positive integer"),
    ("--epochs=-2", "flag --epochs=-2: -2 is not a positive integer"),
    ("--epochs=abc", "flag --epochs=abc: invalid literal for int() with base 10: 'abc'"),
    ("--hidden=", "flag --hidden=: expected a comma-separated list of positive integers like 256,128"),
    ("--hidden=256,abc", "expected a comma-separated list of positive integers like 256,128"),
    ("--hidden=256,0", "expected a comma-separated list of positive integers like 256,128"),
    ("--learning_rate=0", "--learning_rate must be > 0, got 0.0"),
    ("--momentum=1.5", "--momentum must be in [0, 1), got 1.5"),
    ("--mode=turbo", "flag --mode=turbo: value should be one of <auto|eager|graph|xla>"),
    ("--steps_per_execution=-1", "flag --steps_per_execution=-1: -1 is not a non-negative integer"),
    ("--device=fpga", "flag --device=fpga: value should be one of <auto|cpu|gpu|tpu>"),
    ("--epoch=3", "Unknown command line flag 'epoch'"),
    ("extra", "unexpected arguments ['extra']: every option is a --flag"),
])
def test_an_invalid_flag_value_gets_one_clear_line(flag, fragment, tmp_path):
    result = run_train(flag, f"--output_dir={tmp_path}")
    assert_one_clear_error(result, fragment)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_output_dir_that_is_a_file_is_refused_and_left_untouched(tmp_path):
    precious = tmp_path / "results.txt"
    precious.write_text("do not overwrite")
    assert_one_clear_error(run_train(f"--output_dir={precious}"), f"--output_dir {precious} is a file, not a directory")
    assert precious.read_text() == "do not overwrite"


def test_a_missing_data_dir_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_train("--dataset=mnist", f"--data_dir={missing}", f"--output_dir={tmp_path / 'out'}")
    assert_one_clear_error(result, str(missing))
    assert not (tmp_path / "out" / "history.json").exists()


def test_an_unknown_dataset_is_named(tmp_path):
    result = run_train("--dataset=mnistt", f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={tmp_path / 'out'}")
    assert_one_clear_error(result, "mnistt")


def test_a_broken_idx_file_is_named(small_mnist_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in small_mnist_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    labels = broken / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:200])  # cut mid-stream
    result = run_train("--dataset=mnist", f"--data_dir={broken}", f"--tfds_dir={tmp_path / 'tfds'}",
                       f"--output_dir={tmp_path / 'out'}")
    assert_one_clear_error(result, "train-labels-idx1-ubyte.gz")


def test_compare_keras_prints_the_side_by_side_table_and_writes_parity_files(small_mnist_dir, tmp_path):
    """With the manual backward pass on the engine's side (the tape's is tests/test_parity.py's)."""
    out = tmp_path / "parity"
    result = run_train("--compare_keras", "--dataset=mnist", f"--data_dir={small_mnist_dir}", "--gradients=manual",
                       f"--tfds_dir={tmp_path / 'tfds'}", "--epochs=2", "--hidden=32", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header_at = next(at for at, line in enumerate(lines) if line.lstrip().startswith("epoch |"))
    before_the_table = "\n".join(lines[:header_at])  # the engine trains both epochs before Keras's first row
    for said in ("Steps: the first 63 batches", "engine: epoch 1/2 trained - loss", "engine: epoch 2/2 trained",
                 "tf.keras: compile + fit"):
        assert said in before_the_table, said
    assert re.search(r"^first_relu_split_step: (none \(no ReLU split in the first \d+ steps\)|[1-9]\d* \(the "
                     r"first step where a hidden unit is on in one model and off in the other\))$",
                     result.stdout, re.M), result.stdout[-1500:]
    header = lines[header_at]
    assert "engine loss" in header and "keras loss" in header and "|d loss|" in header and "keras s" in header
    rows = [line for line in result.stdout.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    assert [row.split("|")[0].strip() for row in rows] == ["1", "2"]
    report = json.loads((out / "parity.json").read_text())
    assert report["summary"]["forward_max_abs_diff"] <= 1e-6
    assert report["summary"]["step1_gradient_max_abs_diff"] <= 1e-6
    assert report["summary"]["step_loss_max_rel_diff"] <= 1e-5
    assert len(report["epochs"]) == 2 and report["setup"]["hidden"] == [32] and report["setup"]["gradients"] == "manual"
    assert (out / "parity.png").read_bytes().startswith(b"\x89PNG")


def test_asking_for_a_device_the_machine_lacks_says_so(tmp_path):
    """This suite runs on CPU-only machines (CI's): a GPU request must fail clearly, not fall back."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip(reason="this machine has a GPU: the request would succeed")
    result = run_train("--device=gpu", "--dataset=fashion_mnist", f"--output_dir={tmp_path}")
    assert_one_clear_error(result, "--device=gpu: TensorFlow sees no GPU")


def test_train_and_search_default_to_the_data_set_readme_trains_first():
    import train
    from engine.experiments import search
    from engine.run.config import TrainConfig
    from tests.test_docs import readme_commands

    readme_dataset = re.search(r"--dataset=(\w+)", readme_commands()[0]).group(1)
    assert readme_dataset == "fashion_mnist"
    assert train.FLAGS["dataset"].default == readme_dataset
    assert search.FLAGS["dataset"].default == readme_dataset
    assert TrainConfig().dataset == readme_dataset


def test_every_run_option_is_declared_once_as_a_train_config_field_and_train_py_flags_are_made_from_them():
    """A TrainConfig field is the option: train.py's flag has its name, default, help and allowed values."""
    import dataclasses

    import train
    from engine.run.config import TrainConfig

    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    own = {name for name in train.FLAGS if name not in ("help", "compare_keras")}  # compare_keras picks the program
    assert own <= set(fields), f"flags of train.py that are not TrainConfig fields: {sorted(own - set(fields))}"
    for name in own:
        flag, field = train.FLAGS[name], fields[name]
        assert flag.default == field.default, name
        if "help" in field.metadata:
            assert flag.help.endswith(field.metadata["help"]), name  # an enum's help starts with <its|choices>:
            if field.metadata["choices"]:
                assert tuple(flag.parser.enum_values) == tuple(field.metadata["choices"]), name
    assert {name for name, field in fields.items() if "help" in field.metadata} <= own


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "--epochs must be >= 1, got 0"),
    ({"checkpoint_every": -1}, "--checkpoint_every must be >= 0 steps (0: every epoch only), got -1"),
    ({"device": "npu"}, "--device must be one of auto, cpu, gpu, tpu, got 'npu'"),
])
def test_a_library_caller_gets_the_check_the_option_declares(changes, message):
    from engine.errors import ConfigError
    from engine.run.config import TrainConfig

    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**changes)

"""train.py's reliability, driven in-process through `train.main` (TensorFlow imported once, not per run):
resuming, determinism, divergence, and bad input — each an exit status and one exact line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import train
from engine.data import idx
from tests.conftest import REPO, mnist_subset

TIMING = ("seconds", "steps_per_second")


@pytest.fixture(scope="module")
def tiny_mnist_dir(tmp_path_factory, mnist_t10k_dir) -> Path:
    """Real digits as a whole data set: 640 train and 160 test images from MNIST's t10k."""
    return mnist_subset(mnist_t10k_dir, tmp_path_factory.mktemp("tiny_mnist"), train=640, test=160)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture
def run_train(tiny_mnist_dir, tfds_dir, capsys):
    """`run_train(*flags)` -> (exit status, stdout, stderr) of train.py on the tiny data set."""
    def run(*flags, data_dir=tiny_mnist_dir):
        status = train.main(["train.py", "--dataset=mnist", f"--data_dir={data_dir}", f"--tfds_dir={tfds_dir}",
                             "--hidden=16", "--epochs=2", "--mode=graph", "--steps_per_execution=8", *flags])
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run


def error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and "Traceback" not in stderr, stderr[-2000:]
    return lines[-1]


def final_weights(output_dir: Path) -> dict:
    reader = tf.train.load_checkpoint(str(output_dir / "checkpoints"))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(output_dir / "checkpoints"))
            if name.startswith(("model/", "optimizer/"))}


def numbers(output_dir: Path) -> list:
    history = json.loads((output_dir / "history.json").read_text())
    return [{k: v for k, v in logs.items() if k not in TIMING} for logs in history["epochs"]] + [history["test"]]


def test_two_runs_with_the_same_flags_give_identical_numbers_and_weights(run_train, tmp_path):
    for name in ("first", "second"):
        status, out, _ = run_train(f"--output_dir={tmp_path / name}", "--momentum=0.9")
        assert status == 0 and "Determinism: on (op determinism, seed 0)" in out
    assert numbers(tmp_path / "first") == numbers(tmp_path / "second")
    first, second = final_weights(tmp_path / "first"), final_weights(tmp_path / "second")
    assert first.keys() == second.keys() and len(first) == 2 * 2 + 1 + 1 + 4  # 2 layers, iterations, lr, 4 slots
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_a_finished_run_resumes_with_nothing_left_and_a_changed_model_is_refused(run_train, tmp_path):
    out_dir = tmp_path / "run"
    assert run_train(f"--output_dir={out_dir}", "--epochs=1")[0] == 0
    status, out, _ = run_train(f"--output_dir={out_dir}")  # one more epoch
    assert status == 0 and f"Resuming from {out_dir}/checkpoints/ckpt-1: epoch 2, 0 steps of it done" in out
    assert "Epoch 1/2" not in out and "Epoch 2/2" in out
    assert [e["epoch"] for e in json.loads((out_dir / "history.json").read_text())["epochs"]] == [1, 2]

    status, out, _ = run_train(f"--output_dir={out_dir}")  # the same flags once more: nothing left
    assert status == 0 and f"Resuming from {out_dir}/checkpoints/ckpt-2: the run is complete, 2 epochs trained " \
                           "(--epochs=2): nothing left to train" in out
    assert "steps of it done" not in out and "Epoch " not in out
    assert [e["epoch"] for e in json.loads((out_dir / "history.json").read_text())["epochs"]] == [1, 2]

    before = (out_dir / "history.json").read_bytes()
    status, _, err = run_train(f"--output_dir={out_dir}", "--hidden=32")
    assert status == 2 and error_line(err).startswith(
        f"train.py: error: {out_dir}/checkpoints/ckpt-2 is a checkpoint of a different run (hidden [16] there, "
        "[32] now): pass the same flags to resume it, --noresume to start over, or another --output_dir")
    assert (out_dir / "history.json").read_bytes() == before

    status, out, _ = run_train(f"--output_dir={out_dir}", "--hidden=32", "--noresume", "--epochs=1")
    assert status == 0 and "--noresume: starting over" in out and "Epoch 1/1" in out


def test_a_diverging_run_stops_at_once_naming_where_and_keeps_the_last_good_checkpoint(run_train, tmp_path):
    out_dir = tmp_path / "run"
    status, _, err = run_train(f"--output_dir={out_dir}", "--hidden=256,128", "--learning_rate=1e6", "--checkpoint_every=1",
                               "--steps_per_execution=1")
    line = error_line(err)
    assert status == 1 and line.startswith("train.py: error: "), line
    # step 2's loss is finite but 4e16 times the first's: past the divergence bound, a step before the NaN
    assert "at epoch 1, step 2, above 100x the first step's loss 2.3" in line, line
    # ckpt-1 (after step 1's update) held the exploded weights whose loss step 2 revealed: discarded
    assert "(--divergence_factor): training diverged; no good checkpoint was written" in line, line
    assert "Lower --learning_rate, or check the data" in line
    assert tf.train.latest_checkpoint(str(out_dir / "checkpoints")) is None
    assert not list((out_dir / "checkpoints").glob("ckpt-*"))
    assert not (out_dir / "history.json").exists()


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, source: Path) -> Path:
    """A data dir whose train split is (images, labels) and whose test split is the tiny one's."""
    folder.mkdir()
    idx.write_idx(folder / "train-images-idx3-ubyte.gz", images)
    idx.write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes((source / name).read_bytes())
    return folder


@pytest.mark.parametrize("images, labels, fragment", [
    (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8),
     "train-images-idx3-ubyte.gz: holds 0 images: an empty data set cannot be trained"),
    (np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8),
     "train-labels-idx1-ubyte.gz: count mismatch: 4 labels for 5 images in train-images-idx3-ubyte.gz"),
    (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 12, 3], np.uint8),
     "train-labels-idx1-ubyte.gz: label out of range: label 12 at index 2, expected 0..9"),
    (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 3], np.float32),
     "train-labels-idx1-ubyte.gz: expected uint8 labels of shape [N], got float32"),
    (np.zeros((4, 28, 27), np.uint8), np.zeros(4, np.uint8),
     "train-images-idx3-ubyte.gz: expected uint8 images of shape [N, 28, 28], got uint8 of shape [4, 28, 27]"),
], ids=["empty", "count-mismatch", "label-out-of-range", "float-labels", "wrong-image-shape"])
def test_bad_data_is_one_line_and_exit_2_with_nothing_written(run_train, tiny_mnist_dir, tmp_path, images, labels,
                                                             fragment):
    data_dir = write_split(tmp_path / "data", images, labels, tiny_mnist_dir)
    status, _, err = run_train(f"--output_dir={tmp_path / 'out'}", data_dir=data_dir)
    assert status == 2 and error_line(err).startswith("train.py: error: ") and fragment in error_line(err)
    assert not (tmp_path / "out").exists()  # a failed run leaves no empty directory


@pytest.mark.parametrize("flag, fragment", [
    ("--checkpoint_every=-1", "flag --checkpoint_every=-1: -1 is not a non-negative integer"),
    ("--output_dir={tmp}/file/sub", "--output_dir {tmp}/file/sub is not writable (Not a directory): pass a writable directory"),
    ("--output_dir={tmp}/file", "--output_dir {tmp}/file is a file, not a directory: pass a directory path"),
])
def test_bad_flags_are_one_line_and_exit_2(run_train, tmp_path, flag, fragment):
    (tmp_path / "file").write_text("precious")
    status, _, err = run_train(f"--output_dir={tmp_path / 'out'}", flag.format(tmp=tmp_path))
    assert status == 2 and error_line(err) == f"train.py: error: {fragment.format(tmp=tmp_path)}"
    assert (tmp_path / "file").read_text() == "precious"


def test_a_run_asking_fewer_epochs_than_its_checkpoint_holds_is_refused_before_the_data_loads(run_train, tmp_path):
    """As a new user's second command after Start-here: the default output directory resumes, and its
    checkpoint has trained more epochs than asked; said at once, not after loading the data."""
    assert run_train(f"--output_dir={tmp_path}")[0] == 0  # 2 epochs
    status, out, err = run_train(f"--output_dir={tmp_path}", "--epochs=1")
    assert status == 2
    assert error_line(err).startswith(f"train.py: error: {tmp_path}/checkpoints/ckpt-")
    assert "has 2 epochs trained, more than --epochs=1: pass --epochs=2 or more" in err
    assert "the output directory resumes by default" in err
    assert "Data:" not in out, "refused before the data were loaded"


def test_compare_keras_refuses_an_export_dir_it_would_ignore_and_holds_the_lock(run_train, tmp_path):
    status, _, err = run_train("--compare_keras", f"--output_dir={tmp_path / 'run'}",
                               f"--export_dir={tmp_path / 'export'}")
    assert status == 2 and "--compare_keras trains both sides for the comparison and exports neither: drop " \
                           "--export_dir" in error_line(err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "export").exists()
    from engine.run import files

    with files.claim(str(tmp_path / "busy")):  # another live run holds the directory
        status, _, err = run_train("--compare_keras", f"--output_dir={tmp_path / 'busy'}")
    assert status == 2 and "busy" in error_line(err)


def test_an_unwritable_default_tfds_dir_is_one_line_before_any_work(tiny_mnist_dir, tmp_path):
    """HOME=/dev/null without --tfds_dir: TFDS's default directory cannot be made; said at once, exit 2."""
    env = {key: value for key, value in os.environ.items() if key != "TFDS_DATA_DIR"}
    run = subprocess.run([sys.executable, str(REPO / "train.py"), "--dataset=mnist", f"--data_dir={tiny_mnist_dir}",
                          f"--output_dir={tmp_path / 'out'}"], capture_output=True, text=True, timeout=120,
                         env={**env, "HOME": "/dev/null", "PYTHONPATH": str(REPO)})
    assert run.returncode == 2, run.stderr[-2000:]
    assert error_line(run.stderr) == (
        "train.py: error: --tfds_dir (by default TFDS_DATA_DIR or ~/tensorflow_datasets) "
        "/dev/null/tensorflow_datasets is not writable (Not a directory): pass a writable directory")
    assert not (tmp_path / "out").exists()

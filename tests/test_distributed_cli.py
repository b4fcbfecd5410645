"""train.py under --strategy=mirrored and --strategy=multi_worker: the whole job (data, model,
training, evaluation, files) on a distribution strategy gives one device's epoch figures.

Slow (each run is a full Fashion-MNIST epoch in its own process): opt-in with `-m slow`.
"""

import json
import subprocess
import sys

import pytest

from engine import data, launch
from tests.conftest import REPO

ARGS = ["--dataset=fashion_mnist", "--epochs=1", "--batch_size=64", "--hidden=64,32", "--mode=graph",
        "--learning_rate=0.05"]


@pytest.fixture(scope="module")
def prepared(fashion_mnist_dir, tmp_path_factory):
    """A TFDS directory prepared once, so that concurrent workers only read it."""
    tfds_dir = tmp_path_factory.mktemp("tfds")
    data.load("fashion_mnist", data_dir=str(fashion_mnist_dir), tfds_dir=str(tfds_dir), log=lambda line: None)
    return [*ARGS, f"--data_dir={fashion_mnist_dir}", f"--tfds_dir={tfds_dir}"]


def train(arguments, out):
    run = subprocess.run([sys.executable, "train.py", *arguments, f"--output_dir={out}"], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, json.loads((out / "history.json").read_text())


def same_figures(got: dict, want: dict) -> None:
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert got["epochs"][0][key] == pytest.approx(want["epochs"][0][key], rel=1e-5), key
    assert got["test"] == pytest.approx(want["test"], rel=1e-5)


@pytest.mark.slow
def test_mirrored_and_multi_worker_runs_of_train_py_match_one_device(prepared, tmp_path):
    _, single = train(prepared, tmp_path / "single")
    output, mirrored = train([*prepared, "--strategy=mirrored", "--cpu_devices=2"], tmp_path / "mirrored")
    assert "Strategy: MirroredStrategy, 2 replicas" in output
    same_figures(mirrored, single)

    command = [sys.executable, str(REPO / "train.py"), *prepared, "--strategy=multi_worker",
               f"--output_dir={tmp_path / 'mw'}"]
    workers = launch.launch(command, 2, str(tmp_path / "logs"), timeout=900)
    assert [worker.returncode for worker in workers] == [0, 0]
    chief = json.loads((tmp_path / "mw" / "history.json").read_text())
    other = json.loads((tmp_path / "mw" / "worker1" / "history.json").read_text())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert chief["epochs"][0][key] == other["epochs"][0][key], key
    same_figures(chief, single)

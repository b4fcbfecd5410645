"""Threads per op: `train.py` runs a small-batch CPU step on one intra-op thread (engine/execution.py's
`threads_for`, measured in bench/RESULTS.md), `--threads` overrides it, and a run with a strategy,
or on a GPU, leaves TensorFlow's own pool alone."""

import os
import subprocess
import sys

import pytest

from engine import execution
from engine.app.job import threads_of
from engine.run.config import TrainConfig
from engine.run.devices import Device
from tests.conftest import REPO, mnist_subset

CPU = Device("cpu", "/device:CPU:0", "CPU (2 cores)")
GPU = Device("gpu", "/device:GPU:0", "GPU 0 of 1: test")


@pytest.mark.parametrize("batch_size, threads", [(1, 1), (32, 1), (63, 1), (64, 0), (1024, 0)])
def test_below_batch_64_a_step_runs_on_one_thread_per_op_else_tensorflows_default(batch_size, threads):
    assert execution.threads_for(batch_size) == threads


def test_the_run_sets_threads_only_on_a_cpu_without_a_strategy_unless_told():
    assert threads_of(TrainConfig(batch_size=32), CPU) == 1
    assert threads_of(TrainConfig(batch_size=256), CPU) == 0
    assert threads_of(TrainConfig(batch_size=32), GPU) == 0
    assert threads_of(TrainConfig(batch_size=32, strategy="mirrored", cpu_devices=2), CPU) == 0
    assert threads_of(TrainConfig(batch_size=1024, threads=2), CPU) == 2
    assert threads_of(TrainConfig(batch_size=32, threads=2), GPU) == 2


def test_threads_are_kept_where_tensorflow_already_runs():
    """This process has run ops: its pool cannot change, and `use_threads` says which it has."""
    import tensorflow as tf

    tf.constant(1.0).numpy()
    before = tf.config.threading.get_intra_op_parallelism_threads()
    assert execution.use_threads(before + 1) == before


def test_the_device_line_says_the_threads_per_op_when_the_run_sets_them():
    from engine.app.job import announce_device

    lines = []
    for threads in (1, 2, 0):
        announce_device(TrainConfig(mode="xla"), lines.append, CPU, threads)
    assert [line.split("; mode: ")[1] for line in lines] == [
        "xla, 64 steps per call, 1 thread per op; gradients: tape",
        "xla, 64 steps per call, 2 threads per op; gradients: tape",
        "xla, 64 steps per call; gradients: tape"]


def test_train_py_at_batch_32_runs_one_thread_per_op(mnist_t10k_dir, tmp_path):
    """In a fresh process, where the pool is still free to set: the run's Device line says it."""
    (tmp_path / "data").mkdir()
    data = mnist_subset(mnist_t10k_dir, tmp_path / "data", train=320, test=64)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "train.py", "--dataset=mnist", f"--data_dir={data}",
                             f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={tmp_path / 'run'}", "--epochs=1",
                             "--hidden=8", "--batch_size=32"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    device = next(line for line in result.stdout.splitlines() if line.startswith("Device: CPU"))
    assert "; mode: xla, 64 steps per call, 1 thread per op;" in device


def test_threads_is_a_flag_with_a_lower_bound():
    result = subprocess.run([sys.executable, "train.py", "--threads=-1"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("train.py: error: ") and "--threads" in result.stderr

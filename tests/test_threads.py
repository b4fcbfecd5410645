"""Threads per op: on a CPU whose logical CPUs are hyperthreads sharing cores, `train.py` runs a
small-batch step on one intra-op thread per core (engine/execution.py's `threads_for`, measured in
bench/RESULTS.md); on real cores, and from batch 64, TensorFlow keeps its own pool. `--threads`
overrides it, and a run with a strategy, or on a GPU, leaves the pool alone. The cores are read
from Linux's CPU topology (engine/run/devices.py's `cpu_topology`)."""

import os
import subprocess
import sys

import pytest

from engine import execution
from engine.app.defaults import threads_of
from engine.run.config import TrainConfig
from engine.run.devices import Device, cpu_topology
from tests.conftest import REPO, mnist_subset

CPU = Device("cpu", "/device:CPU:0", "CPU (2 cores)")
GPU = Device("gpu", "/device:GPU:0", "GPU 0 of 1: test")


@pytest.mark.parametrize("batch_size, threads", [(1, 1), (32, 1), (63, 1), (64, 0), (1024, 0)])
def test_below_batch_64_two_hyperthreads_of_one_core_run_one_thread_per_op(batch_size, threads):
    assert execution.threads_for(batch_size, cores=1, logical_cpus=2) == threads


@pytest.mark.parametrize("cores, logical_cpus, threads", [(2, 2, 0), (1, 1, 0), (2, 4, 2), (4, 8, 4), (0, 2, 0)])
def test_at_batch_32_the_threads_are_the_cores_where_they_are_hyperthreaded_else_tensorflows_pool(
        cores, logical_cpus, threads):
    assert execution.threads_for(32, cores, logical_cpus) == threads


def _sysfs(root, cores_of_cpus):
    """A /sys/devices/system/cpu tree: cpu N on (package, core) `cores_of_cpus[N]`; None leaves it unreadable."""
    for cpu, place in enumerate(cores_of_cpus):
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        if place is not None:
            (topology / "physical_package_id").write_text(f"{place[0]}\n")
            (topology / "core_id").write_text(f"{place[1]}\n")
    return root


def test_the_topology_counts_hyperthreads_of_one_core_once_and_only_the_cpus_the_process_may_use(tmp_path):
    sysfs = _sysfs(tmp_path, [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0)])  # two packages may share a core id
    assert cpu_topology(range(5), sysfs) == (3, 5)
    assert cpu_topology([0, 1], sysfs) == (1, 2)
    assert cpu_topology([0, 2], sysfs) == (2, 2)


def test_a_topology_it_cannot_read_counts_every_cpu_as_a_core(tmp_path):
    """Not Linux, or /sys hidden: the answer that leaves TensorFlow's pool as it is."""
    assert cpu_topology([0, 1], _sysfs(tmp_path / "hidden", [None, None])) == (2, 2)
    assert cpu_topology([0, 1], tmp_path / "missing") == (2, 2)
    assert execution.threads_for(32, *cpu_topology([0, 1], tmp_path / "missing")) == 0


def test_this_machines_topology_is_read():
    cores, logical_cpus = cpu_topology()
    assert 1 <= cores <= logical_cpus == len(os.sched_getaffinity(0))


def test_the_run_sets_threads_only_on_a_cpu_without_a_strategy_unless_told(monkeypatch):
    from engine.run import devices

    monkeypatch.setattr(devices, "cpu_topology", lambda: (1, 2))  # one core's two hyperthreads
    assert threads_of(TrainConfig(batch_size=32), CPU) == 1
    assert threads_of(TrainConfig(batch_size=256), CPU) == 0
    assert threads_of(TrainConfig(batch_size=32), GPU) == 0
    assert threads_of(TrainConfig(batch_size=32, strategy="mirrored", cpu_devices=2), CPU) == 0
    assert threads_of(TrainConfig(batch_size=1024, threads=2), CPU) == 2
    assert threads_of(TrainConfig(batch_size=32, threads=2), GPU) == 2
    monkeypatch.setattr(devices, "cpu_topology", lambda: (2, 2))  # two real cores
    assert threads_of(TrainConfig(batch_size=32), CPU) == 0


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
        "xla, steps per call by the step's work, 1 thread per op; gradients: tape",
        "xla, steps per call by the step's work, 2 threads per op; gradients: tape",
        "xla, steps per call by the step's work; gradients: tape"]


def test_train_py_at_batch_32_sets_the_threads_this_machines_cores_call_for(mnist_t10k_dir, tmp_path):
    """In a fresh process, where the pool is still free to set: the run's Device line says what
    `threads_for` gives this machine, and `--threads=1` is set and said on any machine."""
    (tmp_path / "data").mkdir()
    data = mnist_subset(mnist_t10k_dir, tmp_path / "data", train=320, test=64)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    expected = execution.threads_for(32, *cpu_topology())
    for flag, threads in (([], expected), (["--threads=1"], 1)):
        result = subprocess.run([sys.executable, "train.py", "--dataset=mnist", f"--data_dir={data}",
                                 f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={tmp_path / f'run{threads}'}",
                                 "--epochs=1", "--hidden=8", "--batch_size=32", *flag], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        device = next(line for line in result.stdout.splitlines() if line.startswith("Device: CPU"))
        per_op = f", {threads} thread{'s' * (threads > 1)} per op" if threads else ""
        assert f"; mode: xla, steps per call by the step's work{per_op}; gradients:" in device
        # 784-8-10 at batch 32 is a tiny step: the cap, and so the 10 steps of the whole epoch in one call.
        assert "Steps per call: 2048 (at most the epoch; 0.8 MFLOP a step" in result.stdout, result.stdout[-2000:]


def test_threads_is_a_flag_with_a_lower_bound():
    result = subprocess.run([sys.executable, "train.py", "--threads=-1"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("train.py: error: ") and "--threads" in result.stderr

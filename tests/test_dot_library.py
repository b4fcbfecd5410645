"""The library XLA hands a step's dots to: from batch 1024 `train.py` runs a float32 XLA step of a
whole batch with YNNPACK's dots (engine/execution.py's `dot_library_for`, measured in
bench/RESULTS.md), told through XLA_FLAGS before XLA compiles anything (engine/run/xla_flags.py).
A user's own XLA_FLAGS are kept, and one naming the option wins; the variable is put back after
the run. The compiled step really holds YNNPACK's fusions, trains as XLA's own dots do to float32
rounding and resumes bit for bit (in another process: the slow tier)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import execution
from engine.app.defaults import dot_library_of
from engine.app.job import announce_device
from engine.run import xla_flags
from engine.run.config import TrainConfig
from engine.run.devices import Device
from tests.conftest import REPO, mnist_subset

CPU = Device("cpu", "/device:CPU:0", "CPU (2 cores)")
GPU = Device("gpu", "/device:GPU:0", "GPU 0 of 1: test")
YNNPACK = "--xla_cpu_experimental_ynn_fusion_type=dot"


@pytest.mark.parametrize("batch_size, mode, precision, shards, library", [
    (1024, "xla", "float32", 1, "ynnpack"), (4096, "xla", "float32", 1, "ynnpack"),
    (1023, "xla", "float32", 1, "xla"), (256, "xla", "float32", 2, "xla"), (1024, "xla", "float32", 2, "xla"),
    (1024, "graph", "float32", 1, "xla"), (1024, "xla", "mixed_bfloat16", 1, "xla"), (1024, "eager", "float32", 1, "xla")])
def test_a_float32_xla_step_of_a_whole_batch_from_1024_hands_its_dots_to_ynnpack(batch_size, mode, precision, shards,
                                                                                 library):
    assert execution.dot_library_for(batch_size, mode, precision, shards) == library


def test_the_run_hands_the_dots_over_only_on_a_cpu_without_a_strategy():
    assert dot_library_of(TrainConfig(batch_size=1024, mode="xla", shards=1), CPU) == "ynnpack"
    assert dot_library_of(TrainConfig(batch_size=1024, mode="xla", shards=1), GPU) == "xla"
    assert dot_library_of(TrainConfig(batch_size=1024, mode="xla", shards=1, strategy="mirrored", cpu_devices=2),
                          CPU) == "xla"
    assert dot_library_of(TrainConfig(batch_size=32, mode="xla", shards=1), CPU) == "xla"


def test_the_flag_comes_after_the_users_own_and_a_user_naming_the_option_keeps_theirs():
    assert xla_flags.with_dot_library("", "ynnpack") == YNNPACK
    assert xla_flags.with_dot_library("--xla_dump_to=/tmp/x", "ynnpack") == f"--xla_dump_to=/tmp/x {YNNPACK}"
    assert xla_flags.with_dot_library("--xla_cpu_experimental_ynn_fusion_type=", "ynnpack") == (
        "--xla_cpu_experimental_ynn_fusion_type=")
    assert xla_flags.with_dot_library("--xla_dump_to=/tmp/x", "xla") == "--xla_dump_to=/tmp/x"
    with pytest.raises(ValueError, match=r"^Unknown dot library 'mkl': expected one of xla, ynnpack$"):
        xla_flags.with_dot_library("", "mkl")


@pytest.mark.parametrize("before", [None, "", "--xla_dump_to=/tmp/x"], ids=["absent", "empty", "set"])
def test_the_variable_is_as_it_was_after_the_block_even_when_it_fails(before):
    environ = {} if before is None else {"XLA_FLAGS": before}
    with pytest.raises(RuntimeError):
        with xla_flags.dots_on("ynnpack", environ) as dots:
            assert dots == "ynnpack" and environ["XLA_FLAGS"] == " ".join(filter(None, [before, YNNPACK]))
            raise RuntimeError("the run failed")
    assert environ == ({} if before is None else {"XLA_FLAGS": before})
    with xla_flags.dots_on("xla", environ):
        assert environ == ({} if before is None else {"XLA_FLAGS": before})


def test_a_user_naming_the_option_in_xla_flags_is_told_their_choice_holds():
    environ = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}
    with xla_flags.dots_on("ynnpack", environ) as dots:
        assert dots == xla_flags.USERS and environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type="


def test_the_device_line_says_where_the_dots_go():
    lines = []
    for dots in ("ynnpack", "xla", xla_flags.USERS):
        announce_device(TrainConfig(mode="xla", steps_per_execution=96), lines.append, CPU, dots=dots)
    assert [line.split("; mode: ")[1] for line in lines] == [
        "xla, 96 steps per call, dots on YNNPACK; gradients: tape", "xla, 96 steps per call; gradients: tape",
        "xla, 96 steps per call, dots as XLA_FLAGS says; gradients: tape"]


@pytest.fixture(scope="module")
def train_at_1024(mnist_t10k_dir, tmp_path_factory):
    """`train(name, epochs, environ)`: train.py at batch 1024 on 2,048 real digits (two steps an epoch)
    into the output directory `name` (resuming what is there), returning its stdout and history.json;
    each distinct run once per module."""
    root = tmp_path_factory.mktemp("dots")
    (root / "data").mkdir()
    data = mnist_subset(mnist_t10k_dir, root / "data", train=2048, test=64)
    done = {}

    def train(name, epochs, environ=None):
        if (name, epochs) not in done:
            result = subprocess.run([sys.executable, "train.py", "--dataset=mnist", f"--data_dir={data}",
                                     f"--tfds_dir={root / 'tfds'}", f"--output_dir={root / name}",
                                     f"--epochs={epochs}", "--hidden=64", "--batch_size=1024", "--deterministic"],
                                    cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(environ or {})},
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr[-3000:]
            done[name, epochs] = result.stdout, json.loads((root / name / "history.json").read_text())
        return done[name, epochs]

    train.root = root
    return train


def test_train_py_at_1024_compiles_its_step_with_ynnpacks_dots(train_at_1024):
    stdout, _ = train_at_1024("first", 3, {"XLA_FLAGS": f"--xla_dump_to={train_at_1024.root / 'hlo'}"})
    device = next(line for line in stdout.splitlines() if line.startswith("Device: CPU"))
    assert ", dots on YNNPACK; gradients:" in device, device
    optimized = [path.read_text() for path in (train_at_1024.root / "hlo").glob("*after_optimizations.txt")]
    assert sum(text.count("__ynn_fusion") for text in optimized) > 0  # and the user's own flag held too


def test_ynnpacks_dots_train_as_xlas_own_to_float32_rounding(train_at_1024):
    stdout, own = train_at_1024("xla", 3, {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="})
    assert ", dots as XLA_FLAGS says;" in stdout  # the user's XLA_FLAGS named the option: theirs holds
    _, ynnpack = train_at_1024("first", 3, {"XLA_FLAGS": f"--xla_dump_to={train_at_1024.root / 'hlo'}"})
    np.testing.assert_allclose([epoch["loss"] for epoch in ynnpack["epochs"]],
                               [epoch["loss"] for epoch in own["epochs"]], rtol=1e-4)


@pytest.mark.slow
def test_with_ynnpacks_dots_a_run_resumes_bit_for_bit(train_at_1024):
    _, straight = train_at_1024("first", 3, {"XLA_FLAGS": f"--xla_dump_to={train_at_1024.root / 'hlo'}"})
    train_at_1024("resumed", 2)
    _, resumed = train_at_1024("resumed", 3)
    assert [epoch["loss"] for epoch in resumed["epochs"]] == [epoch["loss"] for epoch in straight["epochs"]]
    assert resumed["test"] == straight["test"]

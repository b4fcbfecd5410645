"""The step's matmuls measured per framework (bench/kernels.py): the eight products are the step's,
each framework's loop computes the product it names, and the program keeps the project's boundary.

The default tier needs no peer (TensorFlow's two kernels); the opt-in `peers` tier measures JAX and
PyTorch too (`python -m pytest -m peers`, with `pip install -e '.[peers]'`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import kernel_timers, kernels, matmul_step, workloads
from tests.conftest import REPO


@pytest.mark.parametrize("batch_size", [1, 32, 1024])
def test_the_eight_products_are_the_steps_flops(batch_size):
    assert kernels.REFERENCE_SIZES == tuple(workloads.layer_sizes())
    assert len(kernels.shapes(batch_size)) == 8
    assert kernels.step_flops(batch_size) == workloads.train_flops_per_step(batch_size)


@pytest.mark.parametrize("layout, expected", [("nn", lambda a, b: a @ b), ("tn", lambda a, b: a.T @ b),
                                              ("nt", lambda a, b: a @ b.T)], ids=["nn", "tn", "nt"])
def test_the_tensorflow_loop_sums_the_product_it_names(layout, expected, monkeypatch):
    """What is timed is the product (summed over the stacked slices), not something cheaper."""
    seen = {}

    def best_seconds(call, calls):  # instead of timing: keep what the timed call returns
        seen["out"] = call()
        return 1.0

    monkeypatch.setattr(kernel_timers, "best_seconds", best_seconds)
    a, b = kernel_timers.operands(32, 16, 8, layout, repeats=3)
    for jit in (False, True):
        timer, _ = kernel_timers.tensorflow_timer(jit)
        timer(a, b, layout, 3, 1)
        np.testing.assert_allclose(seen.pop("out"), sum(expected(a[i], b) for i in range(3)), rtol=1e-5, atol=1e-4)


@pytest.mark.peers
@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_peers_loop_sums_the_product_it_names(framework, monkeypatch):
    if not kernels.installed(framework):
        pytest.skip(reason=f"{framework} is not installed (pip install -e '.[peers]')")
    seen = {}

    def best_seconds(call, calls):
        seen["out"] = np.asarray(call())
        return 1.0

    monkeypatch.setattr(kernel_timers, "best_seconds", best_seconds)
    timer, _ = {"jax": kernel_timers.jax_timer, "torch": kernel_timers.torch_timer}[framework]()
    for layout, expected in (("nn", lambda a, b: a @ b), ("tn", lambda a, b: a.T @ b), ("nt", lambda a, b: a @ b.T)):
        a, b = kernel_timers.operands(32, 16, 8, layout, repeats=3)
        timer(a, b, layout, 3, 1)
        np.testing.assert_allclose(seen.pop("out"), sum(expected(a[i], b) for i in range(3)), rtol=1e-5, atol=1e-4)


def run(*flags, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "bench.kernels", *flags], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_quick_tensorflow_run_writes_every_shapes_gflops(tmp_path):
    result = run("--quick", "--rounds=1", "--batch_sizes=32", "--frameworks=tf-xla", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((tmp_path / "kernels.json").read_text())
    assert set(found["frameworks"]) == {"tf-xla"} and "CPU:" in found["machine"]
    for framework in found["frameworks"].values():
        assert all(value > 0 for value in framework["gflops"].values()) and len(framework["gflops"]) == 8
        assert framework["step"]["32"]["matmul_only_steps_per_second"] > 0
        assert framework["step"]["32"]["chained_steps_per_second"] > 0
    text = (tmp_path / "kernels.md").read_text()
    assert "matmul-only steps/s" in text and "the eight chained as a step, + update: steps/s" in text


@pytest.mark.parametrize("flag, fragment", [("--frameworks=mxnet", "--frameworks got mxnet: expected any of"),
                                            ("--batch_sizes=0", "--batch_sizes got 0: expected positive integers"),
                                            ("--out=/dev/null/kernels", "--out /dev/null/kernels")])
def test_a_bad_flag_is_one_line_and_exit_status_2_before_any_measuring(flag, fragment):
    result = run(flag, "--quick")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith(f"{kernels.PROGRAM}: error: ") and fragment in result.stderr


@pytest.mark.peers
def test_with_the_peers_every_installed_framework_is_measured(tmp_path):
    result = run("--quick", "--rounds=1", "--batch_sizes=32", f"--out={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((tmp_path / "kernels.json").read_text())["frameworks"]
    assert [framework for framework in kernels.FRAMEWORKS if kernels.installed(framework)] == list(found)


def test_the_chained_step_is_the_real_steps_eight_products_in_its_order():
    """forward x@W1, h1@W2, h2@W3; backward from z: g3, d2, g2, d1, g1 — the shapes `shapes` lists."""
    calls = []

    def recording(a, b, transpose_a, transpose_b):
        calls.append((a.shape, b.shape, transpose_a, transpose_b))
        return matmul_step.numpy_matmul(a, b, transpose_a, transpose_b)

    x, kernel_values = matmul_step.operands(32, kernels.REFERENCE_SIZES, repeats=1)
    _, (g1, g2, g3) = matmul_step.chained_step(x[0], *kernel_values, recording)
    assert [g.shape for g in (g1, g2, g3)] == [w.shape for w in kernel_values]
    layouts = {(False, False): "nn", (True, False): "tn", (False, True): "nt"}
    products = [(a[1] if ta else a[0], a[0] if ta else a[1], b[0] if tb else b[1], layouts[ta, tb])
                for a, b, ta, tb in calls]
    assert sorted(products) == sorted((m, k, n, layout) for _, m, k, n, layout in kernels.shapes(32))


def assert_same_updates(found, start, expected):
    """Each kernel moved from `start` as NumPy's chain moved it (the change compared, not the kernel)."""
    for found_w, start_w, expected_w in zip(found, start, expected):
        assert np.abs(expected_w - start_w).max() > 1e-3  # the loop did update
        np.testing.assert_allclose(found_w - start_w, expected_w - start_w, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_the_tensorflow_chain_updates_the_weights_once_per_iteration(jit):
    import tensorflow as tf

    x, kernel_values = matmul_step.operands(8, (12, 6, 4, 3), repeats=3, scale=1.0)  # updates well above rounding
    found = matmul_step.tensorflow_loop(tf, jit)(tf.constant(x), *map(tf.constant, kernel_values))
    assert_same_updates([w.numpy() for w in found], kernel_values, matmul_step.reference(x, kernel_values))


@pytest.mark.peers
@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_peers_chain_updates_the_weights_once_per_iteration(framework):
    if not kernels.installed(framework):
        pytest.skip(reason=f"{framework} is not installed (pip install -e '.[peers]')")
    x, kernel_values = matmul_step.operands(8, (12, 6, 4, 3), repeats=3, scale=1.0)  # updates well above rounding
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        found = matmul_step.jax_loop(jax, jnp)(jnp.asarray(x), *map(jnp.asarray, kernel_values))
    else:
        import torch

        found = matmul_step.torch_loop(torch)(torch.from_numpy(x), *map(torch.from_numpy, kernel_values))
    assert_same_updates([np.asarray(w) for w in found], kernel_values, matmul_step.reference(x, kernel_values))


def test_a_library_variants_flags_come_after_the_users_own():
    """XLA reads XLA_FLAGS once, at start-up: the variant's worker gets the user's flags and its own."""
    env = kernels.worker_environment("tf-xla-ynnpack", {"XLA_FLAGS": "--xla_dump_to=/tmp/x", "PATH": "/bin"})
    assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + kernels.XLA_LIBRARY_FLAGS["tf-xla-ynnpack"]
    assert env["PATH"] == "/bin" and env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert "XLA_FLAGS" not in kernels.worker_environment("tf-xla", {})
    from engine.run import xla_flags

    assert kernels.XLA_LIBRARY_FLAGS["tf-xla-ynnpack"] == xla_flags.FLAGS["ynnpack"]  # train.py's flag


@pytest.mark.slow
def test_the_ynnpack_variant_hands_xla_the_dots_it_says(tmp_path):
    """The flag is not just accepted: the optimized HLO of the variant's worker has YNNPACK fusions
    (the plain XLA worker's has none), so the column measures YNNPACK's kernels. The default tier
    keeps the promise in two halves: the variant's worker gets engine/run/xla_flags.py's flag (above),
    and that flag puts YNNPACK's fusions in a real run's HLO (tests/test_dot_library.py)."""
    fusions = {}
    for framework in ("tf-xla", "tf-xla-ynnpack"):
        dump = tmp_path / framework
        env = kernels.worker_environment(framework, {**os.environ, "XLA_FLAGS": f"--xla_dump_to={dump}",
                                                     "TF_CPP_MIN_LOG_LEVEL": "3"})
        result = subprocess.run([sys.executable, "-m", "bench.kernels", f"--worker={framework}", "--quick",
                                 "--batch_sizes=4"], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        optimized = [path.read_text() for path in dump.glob("*after_optimizations.txt")]
        assert optimized, "no HLO dumped"
        fusions[framework] = sum(text.count("__ynn_fusion") for text in optimized)
    assert fusions["tf-xla"] == 0 and fusions["tf-xla-ynnpack"] > 0, fusions


def test_the_gathered_chain_is_the_chain_on_the_gathered_batches():
    import tensorflow as tf

    images = np.random.default_rng(1).standard_normal((50, 12), dtype=np.float32)
    index = np.random.default_rng(2).integers(0, 50, (3, 8)).astype(np.int32)
    _, kernel_values = matmul_step.operands(8, (12, 6, 4, 3), repeats=3, scale=1.0)
    found = matmul_step.tensorflow_gathered_loop(tf)(tf.constant(images), tf.constant(index),
                                                     *map(tf.constant, kernel_values))
    expected = matmul_step.reference(images[index], kernel_values)  # x stacked as the batches gathered
    assert_same_updates([w.numpy() for w in found], kernel_values, expected)


def test_the_step_gap_experiment_times_every_variant_against_the_chain():
    """`python -m bench.step_gap`: the real step and its parts beside the chained bound, one process."""
    result = subprocess.run([sys.executable, "-m", "bench.step_gap", "--batch_sizes=4096", "--rounds=1"], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "batch 4096, 14 steps per call, 1 interleaved rounds:"
    names = [line.split("  ")[1].strip() for line in lines[1:]]
    assert names == ["engine step", "engine, no accuracy", "engine, manual backward", "skeleton", "chain + gather",
                     "chain"]
    assert lines[-1].endswith("1.00 of the chain") and all("steps/s" in line for line in lines[1:])


@pytest.mark.parametrize("flag, fragment", [("--batch_sizes=0", "--batch_sizes got 0: expected integers from 1"),
                                            ("--batch_sizes=a", "--batch_sizes got a: expected integers")])
def test_a_bad_step_gap_batch_size_is_one_line_and_exit_status_2(flag, fragment):
    result = subprocess.run([sys.executable, "-m", "bench.step_gap", flag], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("python -m bench.step_gap: error: ") and fragment in result.stderr


@pytest.mark.peers
def test_with_the_peers_the_step_gap_times_flax_against_jaxs_chain():
    if not kernels.installed("jax"):
        pytest.skip(reason="jax is not installed (pip install -e '.[peers]')")
    result = subprocess.run([sys.executable, "-m", "bench.step_gap", "--framework=jax", "--batch_sizes=4096",
                             "--rounds=1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split("  ")[1].strip() for line in result.stdout.splitlines()[1:]] == ["flax scan step", "chain"]

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

from bench import kernels, workloads
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

    monkeypatch.setattr(kernels, "_best_seconds", best_seconds)
    a, b = kernels.operands(32, 16, 8, layout, repeats=3)
    for jit in (False, True):
        timer, _ = kernels._tensorflow(jit)
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

    monkeypatch.setattr(kernels, "_best_seconds", best_seconds)
    timer, _ = {"jax": kernels._jax, "torch": kernels._torch}[framework]()
    for layout, expected in (("nn", lambda a, b: a @ b), ("tn", lambda a, b: a.T @ b), ("nt", lambda a, b: a @ b.T)):
        a, b = kernels.operands(32, 16, 8, layout, repeats=3)
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
    assert "matmul-only steps/s" in (tmp_path / "kernels.md").read_text()


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

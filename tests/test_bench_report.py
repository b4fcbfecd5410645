"""`python -m bench.report --quick` runs end to end and writes a complete, plausible report.

The numbers of a quick run are not judged (the machine may be busy), only that every
measurement happened: every setting is there with a positive speed, ratios and a fraction of
the roofline in (0, 1.5), so an empty or half-written report cannot pass. Nor may a quick run
touch the committed bench/results/: it writes to runs/bench_quick/ (git-ignored) of the
directory it runs in, here a temporary one.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from bench import workloads
from tests.conftest import REPO

SETTINGS = {"eager", "graph-K1", "graph-K16", "xla-K1", "xla-K64",
            "keras-default", "keras-eager", "keras-jit", "keras-jit-spe64"}


def committed_results() -> dict:
    """The sha256 of every file in the committed bench/results/ (read from the files: no git needed)."""
    results = REPO / "bench" / "results"
    return {str(path.relative_to(results)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in results.rglob("*") if path.is_file()}  # focused experiments keep a folder of their own


def test_quick_report_measures_every_setting_and_writes_json_md_png_outside_the_repository(fashion_mnist_dir,
                                                                                         tmp_path):
    before = committed_results()
    run = subprocess.run([sys.executable, "-m", "bench.report", "--quick"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert committed_results() == before, "a quick run must leave the committed results as they were"
    assert "runs/" in (REPO / ".gitignore").read_text().splitlines(), "runs/bench_quick stays out of git status"
    written = {path.suffix: path for path in (tmp_path / "runs" / "bench_quick").iterdir()}
    assert set(written) == {".json", ".md", ".png"} and written[".json"].stem in {"cpu", "gpu"}
    report = json.loads(written[".json"].read_text())

    assert 0 < report["roofline"]["gflops"] < 1e6
    rows = {row["setting"]: row for row in report["settings"]}
    assert set(rows) == SETTINGS
    for name, row in rows.items():
        assert row["steps_per_second"] > 0 and row["samples_per_second"] > 0, name
        assert row["vs_keras_default"] > 0 and row["vs_keras_best"] > 0, name
        # The fraction of the roofline measured at the report's start: no upper bound, since a roofline measured
        # while another test held a core (pytest -n 2) can be beaten later by a step; its definition instead.
        assert row["roofline_fraction"] > 0, name
        assert row["roofline_fraction"] == pytest.approx(row["gflops"] / report["roofline"]["gflops"]), name
        assert row["first_epoch_s"] > 0, name
    assert rows["keras-default"]["vs_keras_default"] == 1.0
    assert max(rows[name]["vs_keras_best"] for name in SETTINGS if name.startswith("keras")) == 1.0

    ceiling = {(row["engine_setting"], row["batch_size"]): row for row in report["ceiling"]}
    assert set(ceiling) == {("xla-K64", 32), ("xla-K64", 1024)}
    for key, row in ceiling.items():
        assert row["steps_per_second"] > 0 and row["engine_steps_per_second"] > 0, key
        assert row["keras_steps_per_second"] > 0, key
        flops = workloads.train_flops_per_step(row["batch_size"])
        assert row["roofline_fraction"] == pytest.approx(row["steps_per_second"] * flops / 1e9 / report["roofline"]["gflops"])
        assert row["vs_keras"] == row["steps_per_second"] / row["keras_steps_per_second"], key

    assert len(report["input_pipeline"]) == 3
    assert all(row["steps_per_second"] > 0 for row in report["input_pipeline"])
    sweep = {(row["setting"], row["batch_size"]): row for row in report["sweep"]}
    assert {name for name, _ in sweep} == {max((r for r in rows.values() if r["side"] == "engine"),
                                               key=lambda r: r["steps_per_second"])["setting"], "keras-jit-spe64"}
    assert len(sweep) == 2 * len({batch for _, batch in sweep}) >= 4
    assert all(row["samples_per_second"] > 0 and 0 < row["roofline_fraction"] < 1.5 for row in sweep.values())

    pairs = {(row["mode"], row["steps_per_execution"]): row for row in report["gradients"]}
    assert set(pairs) == {("graph", 1), ("graph", 64), ("xla", 1), ("xla", 64)}
    assert all(row["tape_steps_per_second"] > 0 and row["manual_steps_per_second"] > 0 for row in pairs.values())

    scaling = {row["replicas"]: row for row in report["scaling"]["rows"] if row["setting"].startswith("mirrored")}
    assert set(scaling) == {1, 2} and all(row["steps_per_second"] > 0 for row in report["scaling"]["rows"])

    page = written[".md"].read_text()
    for needle in (*SETTINGS, "python -m bench.report --quick", f"TensorFlow {report['tensorflow']}",
                   report["cpu"], "Ceiling: the skeleton step", "Input pipeline", "Batch-size sweep",
                   "Manual gradients beside the tape", "Data-parallel scaling", written[".png"].name):
        assert needle in page, needle
    assert written[".png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[".png"].stat().st_size > 20_000


@pytest.mark.parametrize("flag, fragment", [
    ("--peer_settings=no-such-setting", "--peer_settings got no-such-setting: not a setting of bench/peer_settings.py"),
    ("--peer_batch_sizes=0", "--peer_batch_sizes got 0: expected positive integers")])
def test_a_focused_peers_run_with_a_bad_setting_or_batch_size_is_one_line_before_any_measuring(tmp_path, flag, fragment):
    run = subprocess.run([sys.executable, "-m", "bench.report", "--peers", flag, f"--out={tmp_path / 'out'}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-2000:]
    assert run.stderr.startswith("python -m bench.report: error: ") and fragment in run.stderr
    assert run.stdout == "" and not (tmp_path / "out").exists()

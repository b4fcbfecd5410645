"""`python -m bench.versus` times the same setting in two checkouts, taking turns, and prints the ratio.

The experiment behind every "no speed lost" claim in bench/RESULTS.md. Its numbers are not
judged here (the machine may be busy), only that both sides were really timed, in alternating
order, and that the table holds what the timings said.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def versus(*flags, timeout=600):
    return subprocess.run([sys.executable, "-m", "bench.versus", *flags], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_a_revision_git_cannot_export_is_one_line_and_exit_2_before_tensorflow_loads():
    run = versus("--before=no-such-revision-anywhere", timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "--before=no-such-revision-anywhere" in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


@pytest.mark.slow
def test_both_checkouts_are_timed_in_alternating_order_and_the_table_holds_their_ratio(fashion_mnist_dir):
    run = versus("--before=HEAD", "--settings=graph-K1", "--rounds=2", "--steps=64")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    timings = re.findall(r"round (\d) graph-K1\s+(before|after)\s+([\d.]+) steps/s", run.stdout)
    assert [(r, side) for r, side, _ in timings] == [("1", "before"), ("1", "after"), ("2", "after"), ("2", "before")]
    rate = {(r, side): float(value) for r, side, value in timings}
    assert all(value > 0 for value in rate.values())
    row = re.search(r"\| graph-K1 \| ([\d,]+) .*\| ([\d,]+) .*\| ([\d.]+) \(([\d.]+)-([\d.]+)\) \|", run.stdout)
    ratios = sorted(rate[r, "after"] / rate[r, "before"] for r in ("1", "2"))
    assert row and float(row.group(4)) == pytest.approx(ratios[0], abs=0.006)
    assert float(row.group(5)) == pytest.approx(ratios[1], abs=0.006)

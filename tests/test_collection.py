"""Every process collects the same suite.

README's test command runs the suite in two worker processes (pytest-xdist, `-n 2`). Each worker
collects the suite itself, and xdist refuses to run at all if the two lists of test ids differ. A
test id built from data that changes between processes -- a gzip header's timestamp, the order of a
set of strings under another hash seed, an unseeded random draw -- passes whenever both workers
collect within the same second and fails CI when they straddle one. No single test can see that;
collecting twice can. So this collects the whole suite in two processes, started more than a second
apart, with different hash seeds, and requires the same ids in the same order.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collect(hash_seed):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYTHONHASHSEED"))}
    env["PYTHONHASHSEED"] = str(hash_seed)
    # Every marker tier, not only the default one: `-m slow` and `-m peers` collect through xdist too.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-qq", "-p", "no:cacheprovider",
         "-m", "slow or not slow", "tests"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_two_processes_a_second_apart_collect_the_same_test_ids():
    first = _collect(hash_seed=1)
    time.sleep(1.1)  # a timestamp with one-second resolution (gzip's, a file's mtime) must tick over
    second = _collect(hash_seed=2)
    assert len(first) > 1000, f"collected only {len(first)} tests"
    differing = sorted(set(first) ^ set(second))
    assert not differing, f"{len(differing)} test ids differ between processes, e.g. {differing[:4]}"
    assert first == second, "same test ids, collected in a different order"

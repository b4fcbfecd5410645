"""`python -m bench.graph_step`, the experiment behind relu on TensorFlow's kernel and the data set held in
bfloat16 (engine/activations.py, engine/execution.py's `data_dtype`): it runs, one short round, and prints
every variant's row."""

import subprocess
import sys

from bench import graph_step
from tests.conftest import REPO


def test_the_graph_step_experiment_times_every_variant():
    result = subprocess.run([sys.executable, "-m", "bench.graph_step", "--batch_size=32", "--rounds=1", "--calls=1"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "steps/s" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == list(graph_step.VARIANTS)
    ratios = [float(row.rstrip(" |").rsplit("| ", 1)[1]) for row in rows]
    assert ratios[0] == 1.0 and ratios[3] == 1.0 and all(ratio > 0 for ratio in ratios)

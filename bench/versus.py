"""Before and after: the same settings timed in two checkouts, alternating, one process each.

    python -m bench.versus --before=8d952d6^1                   # HEAD's working tree against a commit
    python -m bench.versus --before=REV --settings=xla-K64,graph-K1 --rounds=7 --steps=3000

A change that must not cost speed is judged by this experiment. Two full `bench.report` runs
minutes apart cannot show it: this machine's speed drifts by tens of percent within minutes
(RESULTS.md, "How steady this machine is"). Here the two checkouts take turns, so the drift falls
on both alike:

- `--before` is exported with `git archive` into a temporary directory (removed at the end; the
  repository's worktrees and index are not touched); *after* is this working tree, as it is.
- A round times every setting once in each checkout, *before* first in odd rounds and *after*
  first in even ones. Each timing is its own Python process started in that checkout, so each
  side imports its own `engine/`, `layers/` and `bench/`: a fresh model in the setting
  (`bench.workloads.step_runner`, the API both sides share), `measure.WARMUP_CALLS` untimed
  calls (the trace and compile), then `--steps` steps ending on a read-back.
- It prints each timing as it comes, then per setting: the median and range of each side and
  the median of the per-round ratios after/before (1.00 = unchanged; within the spread of the
  rounds = within noise).

Nothing is written but what it prints; paste the table into bench/RESULTS.md with this command.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from absl import flags

from engine.errors import ConfigError
from engine.run import cli, program
from engine.run.faults import RunFault

PROGRAM = "python -m bench.versus"
FLAGS = cli.new_flag_values()
flags.DEFINE_string("before", None, "The commit (any git revision) to time against this working tree.",
                    flag_values=FLAGS)
flags.DEFINE_list("settings", ["xla-K64", "graph-K1"], "Names in bench.workloads.SETTINGS, each timed on both sides.",
                  flag_values=FLAGS)
flags.DEFINE_integer("rounds", 5, "Rounds; each times every setting once per side.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("steps", 3000, "Timed steps per timing (rounded up to whole K-step calls).", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 32, "Batch size of every timing.", lower_bound=1, flag_values=FLAGS)
flags.mark_flag_as_required("before", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

# One timing, run by `python -c` in a checkout: only what both sides of any recent commit have.
CHILD = """
import sys, time
from bench import measure, workloads
setting, steps, batch = workloads.SETTINGS[sys.argv[1]], int(sys.argv[2]), int(sys.argv[3])
data = workloads.load_data()
x, y = data.train_images, data.train_labels
runner = workloads.step_runner(setting, x, y, batch)
runner(measure.WARMUP_CALLS)
calls = max(1, -(-steps // runner.steps_per_call))
start = time.perf_counter()
runner(calls)
print(calls * runner.steps_per_call / (time.perf_counter() - start))
"""


def export(revision: str, into: Path) -> None:
    """`revision`'s tree, as files, in `into` (raises CalledProcessError naming a bad revision)."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def time_once(checkout: Path, setting: str, steps: int, batch_size: int) -> float:
    """Steps per second of one timing in its own process, started in `checkout`."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", CHILD, setting, str(steps), str(batch_size)], cwd=checkout,
                          env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RunFault(f"the timing of {setting} in {checkout} failed: {last}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, compare)


def compare() -> int:
    """Both checkouts timed, taking turns, and the table printed; returns 0."""
    after = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="versus-") as temporary:
        before = Path(temporary)
        try:  # before TensorFlow loads: a wrong revision costs a fraction of a second
            export(FLAGS.before, before)
        except (subprocess.CalledProcessError, FileNotFoundError) as error:
            reason = (getattr(error, "stderr", None) or b"").decode().strip().splitlines()
            raise ConfigError(f"--before={FLAGS.before} cannot be exported by git archive "
                              f"({reason[0] if reason else error}): name a commit of this repository, "
                              "and run from its top directory") from None
        from engine import startup

        startup.import_tensorflow()  # without TensorFlow's start-up lines
        from bench import workloads

        unknown = [name for name in FLAGS.settings if name not in workloads.SETTINGS]
        if unknown:
            raise ConfigError(f"unknown settings {unknown}: choose from {sorted(workloads.SETTINGS)}")
        rates = {(name, side): [] for name in FLAGS.settings for side in ("before", "after")}
        start = time.perf_counter()
        for round_number in range(1, FLAGS.rounds + 1):
            order = (("before", before), ("after", after))
            for name in FLAGS.settings:
                for side, checkout in (order if round_number % 2 else order[::-1]):
                    rate = time_once(checkout, name, FLAGS.steps, FLAGS.batch_size)
                    rates[name, side].append(rate)
                    print(f"[{time.perf_counter() - start:6.0f}s] round {round_number} {name:<14} {side:<6} "
                          f"{rate:9.1f} steps/s", flush=True)
    print(f"\nbatch {FLAGS.batch_size}, {FLAGS.rounds} rounds of {FLAGS.steps} steps; before = {FLAGS.before}, "
          "after = this working tree")
    print("| setting | before steps/s (median, range) | after steps/s (median, range) | after/before per round "
          "(median, range) |")
    print("|---|---:|---:|---:|")
    for name in FLAGS.settings:
        old, new = rates[name, "before"], rates[name, "after"]
        ratios = [b / a for a, b in zip(old, new)]
        print(f"| {name} | {statistics.median(old):,.0f} ({min(old):,.0f}-{max(old):,.0f}) | "
              f"{statistics.median(new):,.0f} ({min(new):,.0f}-{max(new):,.0f}) | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

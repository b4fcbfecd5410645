"""Does memory stay flat over a long run? The 30-epoch reference job, with resident memory per epoch.

    python -m bench.memory                      # Fashion-MNIST, the CLI's defaults, 30 epochs
    python -m bench.memory --epochs=5 --out=/tmp/memory   # a quicker look

It runs `engine.app.job.run` itself (checkpoints, validation, progress and all, as `train.py` does)
and, at each "Epoch N/E" line, reads the process's peak resident set size since the previous
epoch (`VmHWM` in /proc/self/status, reset after each reading by writing 5 to
/proc/self/clear_refs) and its current one (`VmRSS`). A leak (a retrace per epoch, tensors kept
per step, checkpoints held in memory) shows as growth from epoch to epoch; epoch 1 is excluded
from the comparison since it holds the one-time XLA compilation. Exit status 1 if the peak grew
by more than `--max_growth` from epoch 2 to the last.
"""

import os
import re
import sys
import tempfile
from typing import Optional, Sequence

from absl import flags

from engine.run import cli, program, writes

PROGRAM = "python -m bench.memory"
FLAGS = cli.new_flag_values()
flags.DEFINE_integer("epochs", 30, "Epochs of the reference run.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_float("max_growth", 0.05, "Allowed relative growth of the per-epoch peak RSS, epoch 2 to last.",
                   lower_bound=0.0, flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output directory (default: a temporary one); memory.json is written there.",
                    flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def memory_mib() -> dict:
    """{'peak': VmHWM, 'current': VmRSS} of this process, in MiB."""
    with open("/proc/self/status") as status:
        fields = dict(re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", status.read(), re.MULTILINE))
    return {"peak": int(fields["VmHWM"]) / 1024, "current": int(fields["VmRSS"]) / 1024}


def reset_peak() -> None:
    """Makes VmHWM restart from the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:  # a kernel switch, not a file: see tests/test_writes.py
        clear_refs.write("5")


def measure_memory() -> int:
    """The reference run with memory read per epoch; exit status 1 if it grew."""
    from engine import startup

    startup.import_tensorflow()
    from engine.app import job
    from engine.run.config import TrainConfig

    out = FLAGS.out or tempfile.mkdtemp(prefix="memory-")
    config = TrainConfig(dataset="fashion_mnist", epochs=FLAGS.epochs, output_dir=out, resume=False,
                         tfds_dir=os.path.join(out, "tfds"))
    epochs = []

    def record(line: str) -> None:
        print(line, flush=True)
        if line.startswith("Epoch "):
            epochs.append({"epoch": len(epochs) + 1, **memory_mib()})
            print(f"  memory: peak {epochs[-1]['peak']:.1f} MiB, now {epochs[-1]['current']:.1f} MiB", flush=True)
            reset_peak()

    reset_peak()
    job.run(config, print_fn=record)
    second, last = epochs[min(1, len(epochs) - 1)], epochs[-1]
    growth = last["peak"] / second["peak"] - 1
    summary = {"epochs": epochs, "peak_epoch2_mib": second["peak"], "peak_last_mib": last["peak"],
               "growth_epoch2_to_last": growth, "max_growth": FLAGS.max_growth}
    writes.write_json(os.path.join(out, "memory.json"), summary)
    print(f"Peak RSS: epoch 2 {second['peak']:.1f} MiB, epoch {last['epoch']} {last['peak']:.1f} MiB: "
          f"growth {growth:+.2%} (allowed {FLAGS.max_growth:.0%}); per epoch in {out}/memory.json")
    return 0 if growth <= FLAGS.max_growth else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, measure_memory, outputs=("out",))


if __name__ == "__main__":
    sys.exit(main())

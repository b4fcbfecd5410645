"""Train the MLP from the command line.

    python train.py --dataset=fashion_mnist --epochs=30

This file only turns flags into an `engine.run.config.TrainConfig`, settles it
(`engine.app.preflight`) and calls `engine.app.job.start`;
the engine never reads flags. A problem the user can fix (a bad flag, missing or broken
data, an unwritable output directory) is printed as one line, with exit status 2.
"""

import shlex
import sys
from typing import Sequence

from absl import flags

from engine.run import cli, config, program

PROGRAM = "train.py"
FLAGS = cli.new_flag_values()
cli.define_data(FLAGS, config.TrainConfig.dataset, " fashion_mnist is read from Debian's package, offline.")
cli.define_hidden(FLAGS, ",".join(map(str, config.TrainConfig.hidden)), "Hidden layer sizes, comma-separated.")
cli.define_mode(FLAGS, config.TrainConfig.mode)
# Every other run option is a TrainConfig field (engine/run/config.py), its flag made from it, listed as this file's.
config.define_flags(FLAGS, module_name=sys.argv[0] if __name__ == "__main__" else __name__)
flags.DEFINE_boolean("compare_keras", False, "Train the engine and tf.keras side by side from the same weights on "
                     "the same batches; print a per-epoch table, write parity.json and parity.png.", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def resume_command(argv: Sequence[str]) -> str:
    """This very command, minus any --resume/--noresume: resuming is the default.

    An argument holding a newline or another control character is written as bash's $'...',
    so the command stays one line that a shell runs as it was.
    """
    kept = [arg for arg in argv[1:] if not arg.lstrip("-").startswith(("resume", "noresume"))]
    return " ".join(_quoted(arg) for arg in ["python", argv[0], *kept])


def _quoted(arg: str) -> str:
    if arg.isprintable():
        return shlex.quote(arg)
    escaped = "".join(char if char.isprintable() and char not in "\\'" else
                      char.encode("unicode_escape").decode("ascii") if not char.isprintable() else "\\" + char
                      for char in arg)
    return f"$'{escaped}'"


def train() -> int:
    """The run the parsed FLAGS describe: checked, then trained (or compared with Keras); returns 0."""
    from engine import startup
    from engine.app import preflight
    from engine.run import interrupts

    settled = preflight.settle(config.from_flags(FLAGS))
    if FLAGS.compare_keras:
        preflight.check_comparison(settled)
    print_line = lambda line: print(line, flush=True)  # noqa: E731
    # TensorFlow is imported only here, once the flags are known to be good.
    startup.import_tensorflow()
    interrupts.check_pending()  # a Ctrl-C that TensorFlow's import swallowed
    if FLAGS.compare_keras:
        from engine.app import side_by_side
        side_by_side.compare_with_keras(settled, print_fn=print_line)
    else:
        from engine.app import job
        job.start(settled, print_fn=print_line)
    return 0


def main(argv: Sequence[str]) -> int:
    """Parses `argv` (argv[0] is the program), runs the job; returns the exit status (README lists them)."""
    return program.run(PROGRAM, FLAGS, argv, train, stop_hint=f"To resume: {resume_command(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""`python -m engine.tour [--sections=tensors,eager,graph,models]`: runs the chosen sections in order."""

import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the tour

from absl import flags  # noqa: E402

from engine import tour  # noqa: E402
from engine.run import cli  # noqa: E402

PROGRAM = "python -m engine.tour"
FLAGS = cli.new_flag_values()
flags.DEFINE_list("sections", list(tour.SECTIONS), f"Sections to run, comma-separated: {', '.join(tour.SECTIONS)}.",
                  flag_values=FLAGS)


def main(argv: Sequence[str]) -> int:
    """Checks --sections (before TensorFlow is imported), then runs them; returns the exit status."""
    stop = cli.parse(FLAGS, argv, PROGRAM)
    if stop:
        return stop[0]
    unknown = [name for name in FLAGS.sections if name not in tour.SECTIONS]
    if unknown or not FLAGS.sections:
        return cli.error_line(PROGRAM, f"--sections got {','.join(unknown) or 'nothing'}: expected a "
                                       f"comma-separated list of {', '.join(tour.SECTIONS)}")
    for section in FLAGS.sections:
        tour.run(section, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

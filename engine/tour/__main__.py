"""`python -m engine.tour [--sections=tensors,eager,...] [--notebook=PATH.ipynb] [--output_dir=runs/tour]`.

Without --notebook, runs the chosen sections in order in the terminal. With it, writes them as a
Jupyter notebook to PATH and executes it in a kernel of this interpreter, so every cell's output
and every figure is saved in the file (engine/tour/notebook.py; needs the `test` extra).
"""

import logging
import os
import sys
from typing import Sequence

from absl import flags

from engine import tour
from engine.errors import ConfigError
from engine import startup
from engine.run import cli, directories, program, quiet, writes

PROGRAM = "python -m engine.tour"
FLAGS = cli.new_flag_values()
flags.DEFINE_list("sections", list(tour.SECTIONS), f"Sections to run, comma-separated: {', '.join(tour.SECTIONS)}.",
                  flag_values=FLAGS)
flags.DEFINE_string("notebook", None, "Write the sections as a Jupyter notebook to this .ipynb path and execute it, "
                    "outputs and figures saved in it (needs pip install -e '.[test]').", flag_values=FLAGS)
flags.DEFINE_string("output_dir", "runs/tour", "Where the sections write their figures and the exported model.",
                    flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def run_tour() -> int:
    """The sections the parsed FLAGS name, in the terminal or as an executed notebook; returns the exit status."""
    unknown = [name for name in FLAGS.sections if name not in tour.SECTIONS]
    if unknown or not FLAGS.sections:
        raise ConfigError(f"--sections got {','.join(unknown) or 'nothing'}: expected a comma-separated list of "
                          f"{', '.join(tour.SECTIONS)}")
    if FLAGS.notebook is not None:
        return _write_notebook(FLAGS.notebook, FLAGS.sections, FLAGS.output_dir)
    startup.import_tensorflow()  # without the lines that look like failures on a machine with no GPU
    for section in FLAGS.sections:
        tour.run(section, output_dir=FLAGS.output_dir)
    return 0


def main(argv: Sequence[str]) -> int:
    """Checks the flags and the output directory (before TensorFlow is imported), then runs the tour."""
    return program.run(PROGRAM, FLAGS, argv, run_tour, outputs=("output_dir",))


def _write_notebook(path: str, sections: Sequence[str], output_dir: str) -> int:
    if not path.endswith(".ipynb"):
        raise ConfigError(f"--notebook got {path}: expected a path ending in .ipynb")
    directories.check_no_tilde(path, "--notebook")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"--notebook {path}: directory {folder} does not exist")
    writes.check_destination(path, "--notebook")
    try:
        from engine.tour import notebook
    except ImportError as error:
        raise ConfigError(f"--notebook needs {error.name}, which is not installed: pip install -e '.[test]'") from None
    # jupyter_client warns through this logger when it tidies a finished kernel's sockets away; nothing to act on.
    quiet.set_logger_level("traitlets", logging.ERROR)
    seconds, failed = notebook.write(path, sections, output_dir)
    if failed:
        raise ConfigError(f"a cell of {path} failed ({failed}); the notebook holds its traceback")
    print(f"Wrote {path}: {len(sections)} section{'s' * (len(sections) > 1)}, executed in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

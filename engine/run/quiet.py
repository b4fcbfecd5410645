"""Quiet logs: every piece of log-noise handling in the project is a call to this module, around
the one step that makes the noise, so that what is hidden, and why, is read in one place.

TensorFlow's start-up (its CUDA probe's lines on a machine with no GPU) is engine/startup.py's,
a core module, since anyone importing the engine from Python meets it too. Here:

- `without_lines` drops one known line around one step that prints it whatever the log level:
  TensorFlow Lite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
  (engine/deploy/serving.py) and tf.data's NodeDef note under op determinism (engine/compare/parity.py);
- `absl_verbosity` lowers absl's Python logs (TFDS's build, TensorFlow's checkpoint and
  SavedModel writers) for one block, `logger_level` one Python logger's (TensorFlow's warnings
  about a damaged checkpoint index), `set_logger_level` for the rest of the process
  (tf.distribute's INFO line per reduction, jupyter_client's socket notes);
- `without_warnings` ignores one category of Python warnings for one block (tf.lite's notice
  that its interpreter moved to another package).

Nothing happens at import.
"""

import contextlib
import logging
import re
import warnings
from typing import Iterator, Type

from absl import logging as absl_logging

from engine import startup


def without_lines(pattern: str) -> contextlib.AbstractContextManager:
    """A block whose stderr lines matching the regular expression `pattern` are dropped (others kept)."""
    drop = re.compile(pattern)
    return startup.filtered_stderr(lambda text: "".join(line for line in text.splitlines(keepends=True)
                                                        if not drop.search(line)))


@contextlib.contextmanager
def absl_verbosity(level: str) -> Iterator[None]:
    """A block in which absl's Python logs show only `level` ("warning", "error") and above."""
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(level)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


@contextlib.contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """A block in which Python's logger `name` ("tensorflow", ...) shows only `level` and above."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


def set_logger_level(name: str, level: int) -> None:
    """Python's logger `name` shows only `level` and above from now on."""
    logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def without_warnings(category: Type[Warning]) -> Iterator[None]:
    """A block in which Python warnings of `category` are ignored (others still shown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category)
        yield

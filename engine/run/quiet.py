"""TensorFlow's start-up, without the lines that look like failures on a machine with no GPU.

Importing TensorFlow and asking for its devices prints, on a CPU-only machine, from C++ to
file descriptor 2 (so Python cannot catch it, and part of it before TensorFlow reads
TF_CPP_MIN_LOG_LEVEL, so that variable cannot hide it):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)

(the first three twice: two of TensorFlow's libraries carry their own copy of the logger).
`import_tensorflow()` does that import and the device probe with file descriptor 2 pointed
at a temporary file, then writes back every record except:

- the CUDA probe's records (`cudart_stub`, `cuInit`), and only when the machine has no NVIDIA
  driver (`gpu_driver_present`): there they say nothing but "no GPU", which the run's own
  "Device:" line says. Where a driver exists they are kept, since there they mean a broken
  CUDA set-up;
- absl's note about its own configuration (`absl::InitializeLog`);
- records below TF_CPP_MIN_LOG_LEVEL (default 1 here: INFO notes such as oneDNN's are for
  TensorFlow's developers), the level TensorFlow applies itself once it has read it.

Warnings and errors are written back, in order, once the import is done. This is the start-up
only, not a filter on the whole run.

Every other piece of log-noise handling in the project is a call to this module, around the one
step that makes the noise, so that what is hidden, and why, is read in one place:

- `without_lines` drops one known line around one step that prints it whatever the log level:
  TensorFlow Lite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
  (engine/deploy/serving.py) and tf.data's NodeDef note under op determinism (engine/compare/parity.py);
- `absl_verbosity` lowers absl's Python logs (TFDS's build, TensorFlow's checkpoint and
  SavedModel writers) for one block, `logger_level` one Python logger's (TensorFlow's warnings
  about a damaged checkpoint index), `set_logger_level` for the rest of the process
  (tf.distribute's INFO line per reduction, jupyter_client's socket notes);
- `without_warnings` ignores one category of Python warnings for one block (tf.lite's notice
  that its interpreter moved to another package).

Nothing happens at import: TF_CPP_MIN_LOG_LEVEL (default 1 here) is set by `import_tensorflow`,
the entry points' call, unless the environment already sets it.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Callable, Iterator, List, Type

from absl import logging as absl_logging

MIN_LOG_LEVEL = "1"  # TF_CPP_MIN_LOG_LEVEL's default here: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL and above

_RECORD = re.compile(r"^(?P<severity>[IWEF])\d{4} \d\d:\d\d:\d\d")  # absl's "I0000 00:00:17..." prefix
_PYTHON = re.compile(r"^(Traceback |\S+:\d+: \w*(Warning|Error)\b)")  # Python's own, never a continuation
_SEVERITIES = "IWEF"
_ABSL_PREAMBLE = "All log messages before absl::InitializeLog() is called are written to STDERR"
_CUDA_PROBE = re.compile(r"cudart_stub\.cc.*Could not find cuda drivers|failed call to cuInit")


def gpu_driver_present() -> bool:
    """True where an NVIDIA driver is loaded: /proc/driver/nvidia (Linux) or /dev/dxg (WSL 2's GPU)."""
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/dxg")


def kept(text: str, min_level: int, hide_cuda_probe: bool) -> str:
    """`text` (captured start-up output) minus the records described in the module docstring.

    A record is a line with absl's prefix and the lines after it without one (a message may span
    lines); Python's output (a warning, a traceback, anything before the first record) is kept.
    """
    records: List[List[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if _RECORD.match(line) or _ABSL_PREAMBLE in line or _PYTHON.match(line):
            records.append([])
        records[-1].append(line)
    out = []
    for record in records:
        head = record[0] if record else ""
        match = _RECORD.match(head)
        if _ABSL_PREAMBLE in head or (hide_cuda_probe and _CUDA_PROBE.search(head)):
            continue
        if match and _SEVERITIES.index(match["severity"]) < min_level:
            continue
        out += record
    return "".join(out)


@contextlib.contextmanager
def _filtered_stderr(keep: Callable[[str], str]) -> Iterator[None]:
    """Points file descriptor 2 (C++ and Python alike) at a temporary file inside the block, then
    writes `keep(captured text)` to stderr, also when the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(keep(captured.read().decode(errors="replace")))
            sys.stderr.flush()


def without_lines(pattern: str) -> contextlib.AbstractContextManager:
    """A block whose stderr lines matching the regular expression `pattern` are dropped (others kept)."""
    drop = re.compile(pattern)
    return _filtered_stderr(lambda text: "".join(line for line in text.splitlines(keepends=True)
                                                 if not drop.search(line)))


def import_tensorflow():
    """Imports TensorFlow and lists its GPUs with the start-up records filtered; returns the module.

    Call it before anything that imports TensorFlow; once TensorFlow is imported it only returns it.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", MIN_LOG_LEVEL)
    try:
        min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        min_level = 0
    hide_cuda_probe = not gpu_driver_present()
    with _filtered_stderr(lambda text: kept(text, min_level, hide_cuda_probe)):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # cuInit happens here; no runtime is started yet
    return tf


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

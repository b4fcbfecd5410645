"""TensorFlow's start-up, without the lines that look like failures on a machine with no GPU —
for a program and for anyone who imports the engine from Python alike.

Importing TensorFlow and asking for its devices prints, on a CPU-only machine, from C++ to
file descriptor 2 (so Python cannot catch it, and part of it before TensorFlow reads
TF_CPP_MIN_LOG_LEVEL, so that variable cannot hide it):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)

(the first three twice: two of TensorFlow's libraries carry their own copy of the logger).
The first import of TensorFlow in a process that has imported `engine` (every module of the
project starts there, `layers/` included) runs with file descriptor 2 pointed at a temporary
file, together with the device probe, and then writes back every record except:

- the CUDA probe's records (`cudart_stub`, `cuInit`), and only when the machine has no NVIDIA
  driver (`gpu_driver_present`): there they say nothing but "no GPU". Where a driver exists
  they are kept, since there they mean a broken CUDA set-up;
- absl's note about its own configuration (`absl::InitializeLog`);
- records below TF_CPP_MIN_LOG_LEVEL (default 1 here: INFO notes such as oneDNN's are for
  TensorFlow's developers), the level TensorFlow applies itself once it has read it.

Warnings and errors are written back, in order, once the import is done. This is the start-up
only, not a filter on the whole run; a process that imported TensorFlow before `engine` has
already printed its start-up, and nothing here changes it.

Why a hook on the import and not a function to call: a library user writes
`from layers import Dense` or `import engine.training`, and those files import TensorFlow on
their first line, as they should. `install()` (run by engine/__init__.py) puts one finder on
`sys.meta_path` that wraps only the top-level `tensorflow` module's execution in the filter and
then takes itself off; a program that wants TensorFlow at a moment of its choosing (after its
flags are checked) calls `import_tensorflow()`, which is that same import.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from typing import Callable, Iterator, List

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
def filtered_stderr(keep: Callable[[str], str]) -> Iterator[None]:
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


def _start_up_filter() -> Callable[[str], str]:
    """`kept` with this process's level (TF_CPP_MIN_LOG_LEVEL, set to 1 here unless already set)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", MIN_LOG_LEVEL)
    try:
        min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        min_level = 0
    hide_cuda_probe = not gpu_driver_present()
    return lambda text: kept(text, min_level, hide_cuda_probe)


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader, and its device probe, inside the filter; then steps aside."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        uninstall()  # the import is happening: the hook's one job
        with filtered_stderr(_start_up_filter()):
            self.loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # cuInit happens here; no runtime is started yet
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its own loader


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds the top-level `tensorflow` module as the next finders would, with `_QuietLoader`.

    Only finding (`importlib.util.find_spec("tensorflow")`, to ask whether it is installed) leaves
    the hook in place: it goes once the module is executed.
    """

    def __init__(self):
        self.finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.finding:
            return None
        self.finding = True  # the finders after this one, as if it were not there
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _FirstTensorFlowImport()


def install() -> None:
    """The next import of TensorFlow, from anywhere, starts quietly (nothing if it is imported already)."""
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def import_tensorflow():
    """Imports TensorFlow now, with the start-up records filtered; returns the module.

    A program calls it once its flags are checked, before anything that imports TensorFlow;
    once TensorFlow is imported it only returns it.
    """
    install()
    import tensorflow as tf

    return tf

"""SIGINT and SIGTERM as a request to stop cleanly, not a kill.

Python's default turns Ctrl-C into a `KeyboardInterrupt` wherever the interpreter happens to
be (possibly between a weight update and its bookkeeping), and SIGTERM (what `kill`, Slurm and
Kubernetes send before SIGKILL) ends the process on the spot. Here either one only raises a
flag; the training loop looks at it after each compiled call, writes a checkpoint and raises
`Interrupted`, which the CLI turns into exit status 128 + the signal number (130, 143) — the
shell's convention for "ended by a signal".

A second SIGINT gets Python's default back: an impatient user can still break out.
"""

import signal
import types
from typing import Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; `exit_status` is 128 + signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_status = 128 + signum


class SignalStop:
    """A context manager: while inside, SIGINT/SIGTERM set `requested` (the signal number).

    Example:
      >>> with SignalStop() as stop:
      ...     while not stop.requested:
      ...         work()
    """

    def __init__(self):
        self.requested: Optional[int] = None
        self._previous: dict = {}

    def __enter__(self) -> "SignalStop":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.requested).name if self.requested else ""

    def _handle(self, signum: int, frame: Optional[types.FrameType]) -> None:
        self.requested = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM outside training's own handler, raised wherever the program is.

    A `KeyboardInterrupt`, so that whatever already unwinds on Ctrl-C (Python's own library,
    TensorFlow, the writes of engine/run/writes.py) unwinds on SIGTERM too, and
    `engine.run.program` ends the run with 128 + `signum` after one line.
    """

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_status = 128 + signum


def signal_number(stop: BaseException) -> int:
    """The signal behind a `KeyboardInterrupt` (`Stopped` says; Python's own is SIGINT)."""
    return getattr(stop, "signum", signal.SIGINT)


class ProcessSignals:
    """From a program's first line to its last, outside `SignalStop`: SIGINT and SIGTERM raise
    `Stopped` at once, and are remembered. Some native code swallows the exception (a Ctrl-C two
    seconds into TensorFlow's import is lost, and the run would train on as if never stopped),
    so `check()` raises it again once that code has returned.

    Python's default ends a process on SIGTERM on the spot: no line, no clean-up, an output
    directory left holding only its `.lock`. Installed by `engine.run.program`; `restore()` puts
    back what was there (a program run in-process by a test returns to pytest's handlers).
    """

    current: Optional["ProcessSignals"] = None  # the one installed last, for `check_pending`

    def __init__(self):
        self.requested: Optional[int] = None
        self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        self._outer, ProcessSignals.current = ProcessSignals.current, self

    def _handle(self, signum: int, frame: Optional[types.FrameType]) -> None:
        self.requested = signum
        raise Stopped(signum)

    def check(self) -> None:
        if self.requested:
            raise Stopped(self.requested)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        ProcessSignals.current = self._outer


def check_pending() -> None:
    """Raises `Stopped` for a signal the program's `ProcessSignals` saw but native code swallowed."""
    if ProcessSignals.current is not None:
        ProcessSignals.current.check()

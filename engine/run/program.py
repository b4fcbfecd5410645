"""One boundary per program: how every command-line program starts, and every way it ends.

train.py, search, predict, the tour, graph_picture, launch and the bench programs are each a
`main(argv)` that calls `run(PROGRAM, FLAGS, argv, body)`. In order, `run`

1. holds SIGINT and SIGTERM (`interrupts.ProcessSignals`) from its first line to its last:
   either one raises `interrupts.Stopped` wherever the program is — loading data, evaluating,
   exporting — so the run unwinds (a half-built export is removed, an output directory holding
   only its `.lock` is removed) and ends with 130 or 143. Training swaps in its own handler,
   which finishes the compiled call and writes a checkpoint (engine/run/interrupts.py);
2. parses the flags (engine/run/cli.py): `--help` exits 0, a bad flag is one line and 2, all
   before TensorFlow is imported;
3. checks every output directory named by `outputs` before any work (`check_output_dir`);
4. calls `body()`, which returns the exit status;
5. turns any exception reaching it into one line and README's exit status (`ending`).

README's exit statuses, here once for every program:

    0        done (and --help)
    1        the environment failed the run: a diverged loss, a full disk, a lost peer worker,
             no memory (`RunFault`, `ClusterError`, `OSError`, `MemoryError`); or a bug: an
             unexpected exception, said in one line naming it, its traceback in a log file
    2        the user's input cannot work: a flag, data, a directory, a checkpoint, a model,
             results.json (`ConfigError`, `DataError`)
    130/143  stopped by SIGINT/SIGTERM (128 + the signal's number)

Each is one `PROGRAM: error: ...` line on stderr (`PROGRAM: stopped by ...` for a signal), at
most 800 characters, never a traceback. A program whose flags are followed by heavy imports at
module level (TensorFlow) calls `start` there instead of waiting for `main`: its flags are
parsed, and its signals held, before those seconds are spent.
"""

import contextlib
import ctypes
import errno
import os
import signal
import sys
import tempfile
import time
import traceback
from typing import Callable, Optional, Sequence

from absl import flags

from engine.errors import ClusterError, ConfigError, DataError
from engine.run import cli, interrupts, writes
from engine.run.faults import RunFault, one_line

USER_ERRORS = (ConfigError, DataError)  # exit status 2
RUN_FAULTS = (RunFault, ClusterError, OSError, MemoryError)  # exit status 1


_running: Optional[str] = None  # the program `run` is running, for `exit_now`


def start(program: str, flag_values: flags.FlagValues, module_name: str) -> None:
    """When the module runs as a program: holds its signals, parses sys.argv, exits on --help or a bad flag.

    Called right after the program's flags are declared, above its heavy imports; an exception
    or a signal during those imports ends the process through `ending` too (`sys.excepthook`).
    `main` parses again.
    """
    if module_name == "__mp_main__":
        _as_worker()
    if module_name != "__main__":
        return
    interrupts.ProcessSignals()
    sys.excepthook = lambda kind, error, trace: _exit_uncaught(program, error)
    own = sys.argv[:sys.argv.index("--")] if "--" in sys.argv else sys.argv  # after --: a command it runs (launch)
    stop = cli.parse(flag_values, own, program)
    if stop:
        sys.exit(stop[0])


def _as_worker() -> None:
    """A worker process of the program (multiprocessing re-imports its module as __mp_main__ in each):
    Ctrl-C, which a terminal sends to the whole process group, is the program's to answer, so
    the worker ignores it instead of printing a traceback of its own; and on Linux the kernel
    kills it when the program ends, however it ends (prctl PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    sys.excepthook = _quiet_when_orphaned


def _quiet_when_orphaned(kind, error, trace) -> None:
    """A worker that fails while starting because its program stopped mid-way (its semaphores are
    gone) ends without a traceback: it waits up to 30 s for that program to end, and so itself
    (PDEATHSIG); a worker whose program lives on prints the traceback."""
    parent = os.getppid()
    for _ in range(300):
        if os.getppid() != parent:
            return
        time.sleep(0.1)
    sys.__excepthook__(kind, error, trace)


def run(program: str, flag_values: flags.FlagValues, argv: Optional[Sequence[str]], body: Callable[[], int],
        outputs: Sequence[str] = (), stop_hint: str = "") -> int:
    """Runs one program from its command line to its exit status (see the module docstring).

    Args:
      program: the name its lines start with ("train.py", "search", ...).
      flag_values: its flags; argv: its command line (argv[0] is the program), default sys.argv.
      body: the work, reading `flag_values` once parsed; returns the exit status.
      outputs: names of flags naming an output directory, checked before `body` runs.
      stop_hint: said after "stopped by SIGTERM" (how to continue).
    """
    global _running
    signals, outer, _running = interrupts.ProcessSignals(), _running, program
    try:
        stop = cli.parse(flag_values, sys.argv if argv is None else argv, program)
        if stop:
            return stop[0]
        from engine.run.directories import check_output_dir

        for name in outputs:
            if flag_values[name].value is not None:
                check_output_dir(flag_values[name].value, f"--{name}")
        return body()
    except BaseException as error:  # noqa: B036 -- the one place every ending is decided
        if isinstance(error, SystemExit):
            raise
        if signals.requested and not isinstance(error, (KeyboardInterrupt, interrupts.Interrupted)):
            error = interrupts.Stopped(signals.requested)  # what the signal broke (asyncio cancels, a pool breaks)
        status, line = ending(program, error, stop_hint)
        print(line, file=sys.stderr, flush=True)
        return status
    finally:
        signals.restore()
        _running = outer


def ending(program: str, error: BaseException, stop_hint: str = "") -> tuple:
    """(exit status, the one line to print) for an exception that reached the program's boundary."""
    if isinstance(error, (KeyboardInterrupt, interrupts.Interrupted)):
        signum = error.signum if isinstance(error, interrupts.Interrupted) else interrupts.signal_number(error)
        said = str(error) or f"stopped by {signal.Signals(signum).name}"
        return 128 + signum, f"{program}: {one_line(said + (f'. {stop_hint}' if stop_hint else ''))}"
    if isinstance(error, USER_ERRORS):
        return 2, f"{program}: error: {one_line(error)}"
    if isinstance(error, OSError) and not isinstance(error, RunFault):
        return 1, f"{program}: error: {one_line(_os_error(error))}"
    if isinstance(error, MemoryError) or _is_tensorflow_oom(error):
        return 1, (f"{program}: error: out of memory ({type(error).__name__}): pass smaller sizes (--hidden, "
                   "--batch_size), or free memory")
    if isinstance(error, RUN_FAULTS):
        return 1, f"{program}: error: {one_line(error)}"
    log = _traceback_log(program, error)
    where = f"its traceback is in {log}" if log else "its traceback could not be saved"
    return 1, f"{program}: error: {one_line(f'unexpected {type(error).__name__}: {error} — {where}; please report it')}"


def _os_error(error: OSError) -> str:
    """An OSError as a reason and a fix: the disk, the permissions, or the path itself."""
    where = f" at {error.filename}" if error.filename else ""
    fix = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
           errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
           errno.EROFS: "pass a path on a writable file system"}.get(error.errno, "check the path and the disk")
    return f"{error.strerror or error}{where}: {fix}"


def _is_tensorflow_oom(error: BaseException) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(error, tf.errors.ResourceExhaustedError)


def _traceback_log(program: str, error: BaseException) -> Optional[str]:
    """Writes `error`'s traceback to a new file in the temporary directory; its path, or None."""
    name = os.path.basename(program.split()[-1]).replace(".py", "")
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        return writes.write_new(tempfile.gettempdir(), f"scratchflow-{name}-", ".log", text)
    except OSError:
        return None


def running() -> str:
    """The name of the program `run` is running (its lines start with it), else this process's."""
    return _running or os.path.basename(sys.argv[0])


def _exit_uncaught(program: str, error: BaseException) -> None:
    """`sys.excepthook` while a program's module is still importing: one line, the exit status, now."""
    status, line = ending(program, error)
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(status)  # an excepthook cannot choose the status; nothing else has started yet

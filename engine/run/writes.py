"""Every file a program makes is written here: whole or not at all, and never through a link.

A file is written as a temporary file of a fresh name in the destination's own directory
(`tempfile.mkstemp`, which opens with O_CREAT | O_EXCL | O_NOFOLLOW: a link planted at any name
is never opened through, and the name cannot be guessed ahead), flushed and fsync'ed, then
renamed over the destination. A rename replaces a link found at the destination rather than
following it, and readers see the old file or the new, never a part; the directory is fsync'ed
after, so the rename outlives a power cut. Any failure on the way (a full disk, a read-only
directory, Ctrl-C, a directory in the way) removes the temporary file; the old file stays whole.
Directories, the lock file and removal: engine/run/directories.py; whole-directory swaps: swap.py.

The choices, case by case:
- A file a program names inside a directory (history.json, metrics.png, results.json, the
  checkpoint index, an export's files, ranking.*, bench results, tour figures): a link there is
  replaced, never followed. The name is the program's; what the link pointed at is untouched.
- A file the user names by a flag (`predict --csv`, the tour's `--notebook`): checked before any
  work (`check_destination`). A link there is refused, since replacing it would surprise whoever
  made it and following it would write outside; so are a directory and one of the run's own
  inputs (`--csv=EXPORT/model.tflite`). A character device or a pipe (`/dev/stdout`, `/dev/full`)
  is a stream, not a file: written straight to, as there is no old file to keep whole.
- A log a child process writes as it runs (`open_log`): made under a fresh name and renamed into
  place before the first byte, so never through a link; not atomic, since a log is read growing.

Out of reach are the files TensorFlow writes itself: the checkpoints (their directory is checked
for links before every save: engine/run/checkpoints.py), a SavedModel (saved into swap.py's fresh
directory), TensorBoard's event files (named by host, pid and time) and TFDS's prepared data. A
writer killed by SIGKILL leaves its temporary file, `.NAME.XXXXXXXX.tmp`, beside the old file.

Why in engine/run: it is the ring every program stands on (train, search, predict, the tour,
bench), and the core (engine/*.py) and layers/ write no files, so they need not import a ring.
tests/test_writes.py reads every program's source and keeps its writes here.
"""

import contextlib
import json
import os
import stat
import tempfile
from typing import IO, Iterator, Sequence, Tuple

from engine.errors import ConfigError
from engine.run.directories import check_no_tilde, describe


def umask() -> int:
    """This process's umask, read without changing it (Linux's /proc), else by setting it back."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _permissions(path: str) -> int:
    """The destination's own permissions when it is a file, else what `open` would give (mkstemp gives 0600)."""
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            return stat.S_IMODE(info.st_mode)
    return 0o666 & ~umask()


def sync_directory(directory: str) -> None:
    """Makes the renames in `directory` durable (fsync of the directory itself)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic(path: str, mode: str = "wb", **open_args) -> Iterator[IO]:
    """An open file that becomes `path` when the block ends without an exception (see the module docstring).

    Example:
      >>> with atomic("runs/train/ranking.csv", "w", newline="") as file:
      ...     csv.writer(file).writerows(rows)
    """
    directory, name = os.path.split(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name[:200]}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(descriptor, _permissions(path))
        with os.fdopen(descriptor, mode, **open_args) as file:
            descriptor = -1  # the file object owns it now
            yield file
            file.flush()
            os.fsync(file.fileno())
        try:
            os.replace(temporary, path)
        except OSError as error:  # named by the destination, not by the temporary file
            raise OSError(error.errno, error.strerror, path) from None
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    sync_directory(directory)


def write_bytes(path: str, data: bytes) -> None:
    """`data` as file `path`, through `atomic`."""
    with atomic(path) as file:
        file.write(data)


def write_text(path: str, text: str) -> None:
    """`text` as file `path`, in UTF-8, through `atomic`."""
    with atomic(path, "w", encoding="utf-8") as file:
        file.write(text)


def write_json(path: str, payload, indent: int = 2) -> None:
    """`payload` as JSON file `path` (results.json, history.json, a manifest), through `atomic`."""
    write_text(path, json.dumps(payload, indent=indent) + "\n")


def save_figure(figure, path: str, dpi: int = 100) -> None:
    """A matplotlib figure as a file, in the format its suffix names (savefig given a file, not the path)."""
    with atomic(path) as file:
        figure.savefig(file, format=os.path.splitext(path)[1][1:] or "png", dpi=dpi)


def open_log(path: str) -> IO:
    """A new, empty `path` open for writing, made under a fresh name and renamed into place at once."""
    directory, name = os.path.split(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name[:200]}.", suffix=".tmp", dir=directory)
    os.fchmod(descriptor, _permissions(path))
    try:
        os.replace(temporary, path)
    except OSError:
        os.close(descriptor)
        os.unlink(temporary)
        raise
    return os.fdopen(descriptor, "w")


def new_file(directory: str, prefix: str, suffix: str) -> Tuple[str, IO]:
    """A new file of a fresh name in `directory` (a log nobody asked for by name): its path, and it open for writing."""
    descriptor, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    return path, os.fdopen(descriptor, "w", encoding="utf-8")


def write_new(directory: str, prefix: str, suffix: str, text: str) -> str:
    """`text` as a new file of a fresh name in `directory` (`new_file`); returns its path."""
    path, file = new_file(directory, prefix, suffix)
    with file:
        file.write(text)
    return path


def _is_stream(path: str) -> bool:
    """Whether `path` is (or links to) a character device or a pipe."""
    with contextlib.suppress(OSError):
        mode = os.stat(path).st_mode
        return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
    return False


def check_destination(path: str, flag: str, inputs: Sequence[str] = ()) -> None:
    """Refuses, before any work, a file path the user named that cannot be written as promised.

    Raises:
      ConfigError: `path` starts with an unexpanded `~`, is a link (to a file), a directory, one
        of `inputs` (or inside one), or its directory is missing or not writable.
    """
    check_no_tilde(path, flag)
    if _is_stream(path):
        return
    if os.path.islink(path) or os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is {describe(path)}: pass a file path of its own (a link is neither "
                          "followed nor replaced)")
    real = os.path.realpath(path)
    for source in inputs:
        if source and (real == os.path.realpath(source) or real.startswith(os.path.realpath(source) + os.sep)):
            raise ConfigError(f"{flag} {path} is {'inside ' * (real != os.path.realpath(source))}{source}, which "
                              "this run reads: writing it would destroy an input; pass another file path")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise ConfigError(f"{flag} {path} cannot be written ({error.strerror} in {directory}): pass a file path in "
                          "a writable directory") from None


@contextlib.contextmanager
def destination(path: str, mode: str = "w", **open_args) -> Iterator[IO]:
    """`atomic(path)` for a file the user named, or the stream itself when it is one (`check_destination`)."""
    if _is_stream(path):
        with open(path, mode, **open_args) as file:
            yield file
    else:
        with atomic(path, mode, **open_args) as file:
            yield file

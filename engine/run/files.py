"""Output directories and result files: one run per directory, and no half-written file.

Two runs writing one output directory would interleave their checkpoints and leave one run's
`history.json` next to the other's weights, with both exiting 0. So a run first takes an
exclusive lock, `fcntl.flock` on `OUTPUT_DIR/.lock`, before it writes anything there; a second
run is refused with one line naming the holder's pid. A flock belongs to the open file, so the
kernel releases it when the holder exits, however it exits: a lock left by a killed run never
blocks the next one, and no stale-lock cleanup is needed.

The lock file stays (deleting it would race with a run opening it); it holds the holder's pid
and nothing else. A run that fails before writing anything removes the directory it created, so
a failed run leaves no trace.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
from typing import Iterator

from engine.errors import ConfigError

LOCK = ".lock"


@contextlib.contextmanager
def claim(directory: str, flag: str = "--output_dir") -> Iterator[None]:
    """Creates `directory` if needed and holds its exclusive lock while inside.

    On leaving with an exception, a directory this call created is removed again when nothing
    but the lock file (and empty folders) is in it.

    Raises:
      ConfigError: another live process holds the lock, or the directory cannot be created.
    """
    created = not os.path.isdir(directory)
    try:
        os.makedirs(directory, exist_ok=True)
        descriptor = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(f"{flag} {directory} cannot be created ({error.strerror}): pass a writable directory") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError(f"{flag} {directory} is in use by another run (pid {holder}): wait for it to "
                              "finish, stop it, or pass another --output_dir") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        except BaseException:
            if created:
                _remove_if_unused(directory)
            raise
    finally:
        os.close(descriptor)  # releases the flock


def _remove_if_unused(directory: str) -> None:
    """Removes `directory` when it holds only the lock file and empty folders."""
    for root, _, names in os.walk(directory):
        if any(name != LOCK or root != directory for name in names):
            return
    shutil.rmtree(directory, ignore_errors=True)


def write_json_atomically(payload: dict, path: str) -> None:
    """Writes via a temporary file and a rename: readers see the old file or the new, never a part.

    On a failed write (a full disk) the temporary file is removed and the old file stays.
    """
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w") as file:
            json.dump(payload, file, indent=2)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise

"""Output directories: one run per directory.

Two runs writing one output directory would interleave their checkpoints and leave one run's
`history.json` next to the other's weights, with both exiting 0. So a run first takes an
exclusive lock, `fcntl.flock` on `OUTPUT_DIR/.lock`, before it writes anything there; a second
run is refused with one line naming the holder's pid. A flock belongs to the open file, so the
kernel releases it when the holder exits, however it exits: a lock left by a killed run never
blocks the next one, and no stale-lock cleanup is needed.

The lock file stays (deleting it would race with a run opening it); it holds the holder's pid
and nothing else. It is opened with O_NOFOLLOW and never replaced (`directories.open_lock`): a
link, a directory or a pipe named `.lock` is refused with one line saying what it is. A run that
fails before writing anything removes the directory it created, so a failed run leaves no trace.
Files are written by engine/run/writes.py.
"""

import contextlib
import errno
import fcntl
import os
from typing import Iterator

from engine.errors import ConfigError
from engine.run import directories

LOCK = ".lock"


@contextlib.contextmanager
def claim(directory: str, flag: str = "--output_dir") -> Iterator[None]:
    """Creates `directory` if needed and holds its exclusive lock while inside.

    On leaving with an exception, a directory this call created is removed again when nothing
    but the lock file (and empty folders) is in it.

    Raises:
      ConfigError: another live process holds the lock, the directory cannot be created, or its
        `.lock` is not a lock file (a link, a directory).
    """
    directories.check_no_tilde(directory, flag)
    created = not os.path.isdir(directory)
    try:
        directories.make_dirs(directory, flag)
        descriptor = directories.open_lock(os.path.join(directory, LOCK))
    except ConfigError as error:  # what is at .lock, said as it is
        raise ConfigError(f"{flag} {directory} cannot be used: {str(error).replace('another directory', f'another {flag}')}") from None
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
    with contextlib.suppress(OSError):
        directories.remove_tree(directory)

"""A directory replaced as a whole: a reader finds all of the old content or all of the new.

An export is four entries (engine/deploy/export.py); written one by one into place, a run killed
between two of them left a SavedModel of one training beside the `.tflite` of another. So the
new content is built in a fresh directory beside the old, `.NAME.new-XXXXXXXX`, and swapped in
by one rename: renameat2's RENAME_EXCHANGE exchanges the two directories atomically, after which
the fresh name holds the old content, and it is removed. Where a file system cannot exchange,
three renames do it through `.NAME.old-XXXXXXXX` (`exchange`).

A run killed while building leaves its fresh directory beside; the next replacement removes it
(`_clear_stale`), or puts back the old content a kill between the three renames left aside. The
builder holds a flock on its fresh directory, so a live run's is never taken for a dead one's.

Refused before any work (`check_replaceable`): a link (replacing it would replace the link; the
user passes the directory it points to), a file, a mount point, and a directory holding a name
the program does not write, since replacing it would delete what is not the program's.
Files and the other directories: engine/run/writes.py, engine/run/directories.py.
"""

import contextlib
import ctypes
import errno
import fcntl
import glob
import os
import stat
import tempfile
from typing import Collection, Iterator

from engine.errors import ConfigError
from engine.run.directories import check_no_tilde, describe, make_dirs, remove_tree
from engine.run.writes import sync_directory, umask

_RENAME_EXCHANGE = 2  # linux/fs.h


def check_replaceable(path: str, allowed: Collection[str], flag: str) -> None:
    """Refuses, before any work, a directory `replaced_directory` must not replace."""
    check_no_tilde(path, flag)
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
        raise ConfigError(f"{flag} {path} is {describe(path)}: it is replaced as a whole, so pass a directory "
                          "path of its own" + (f" ({os.path.realpath(path)})" if os.path.islink(path) else ""))
    foreign = sorted(set(os.listdir(path)) - set(allowed)) if os.path.isdir(path) else []
    if foreign:
        raise ConfigError(f"{flag} {path} holds {', '.join(foreign[:5])}{', ...' * (len(foreign) > 5)}, which it "
                          f"would not write: it is replaced as a whole, so pass an empty or new directory, or move "
                          "them out")
    if os.path.ismount(path):
        raise ConfigError(f"{flag} {path} is a mount point: pass a directory inside it")


def exchange(new: str, current: str, aside: str) -> None:
    """Swaps two directories: `current` gets `new`'s content in one rename, `new` the old content.

    Where the file system cannot exchange (ENOSYS, EINVAL), three renames via `aside` do it; a
    reader may then find `current` missing for an instant, and a kill in between leaves it at
    `aside` (`replaced_directory` puts it back).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "renameat2") and libc.renameat2(-100, os.fsencode(new), -100, os.fsencode(current),
                                                     _RENAME_EXCHANGE) == 0:  # -100: AT_FDCWD
        return
    if hasattr(libc, "renameat2") and ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), current)
    os.rename(current, aside)
    os.rename(new, current)
    os.rename(aside, new)


def restore(aside: str, path: str) -> None:
    """Puts a directory a killed swap left at `aside` back at `path`, when nothing is at `path`."""
    if not os.path.lexists(path) and os.path.isdir(aside) and not os.path.islink(aside):
        os.rename(aside, path)


def _sync_tree(top: str) -> None:
    for root, _, names in os.walk(top):
        for name in names:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        sync_directory(root)


def _clear_stale(parent: str, name: str) -> None:
    """Removes what a killed `replaced_directory` left beside `name` (its lock is free once it is dead)."""
    stem = os.path.join(glob.escape(parent), f".{glob.escape(name)}")
    for left in sorted(glob.glob(f"{stem}.new-*") + glob.glob(f"{stem}.old-*")):
        descriptor = os.open(left, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another live run's
        finally:
            os.close(descriptor)
        if ".old-" in left:
            restore(left, os.path.join(parent, name))  # killed between the renames of `exchange`
        remove_tree(left)


@contextlib.contextmanager
def replaced_directory(path: str, allowed: Collection[str], flag: str) -> Iterator[str]:
    """A fresh directory beside `path` to build its new content in, swapped in when the block succeeds.

    On an exception the fresh directory is removed and `path` is as it was.
    """
    check_replaceable(path, allowed, flag)
    parent, name = os.path.split(os.path.abspath(path))
    make_dirs(parent, flag)
    _clear_stale(parent, name)
    staging = tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent)
    lock = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(lock, fcntl.LOCK_EX)  # held until the old content is removed: see `_clear_stale`
    try:
        yield staging
        check_replaceable(path, allowed, flag)  # as it is now, not as it was before the work
        _sync_tree(staging)
        os.chmod(staging, stat.S_IMODE(os.stat(path).st_mode) if os.path.isdir(path) else 0o777 & ~umask())
        if os.path.isdir(path):
            exchange(staging, path, os.path.join(parent, f".{name}.old-{staging.rsplit('-', 1)[1]}"))
        else:
            os.rename(staging, path)
        sync_directory(parent)
    finally:
        remove_tree(staging)  # the old content after an exchange; the new after a failure
        os.close(lock)

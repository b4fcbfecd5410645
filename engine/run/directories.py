"""Every directory a program makes, removes or replaces, and its lock file: only where the user said.

Files are written by engine/run/writes.py; this is the rest of the same promise, that nothing
outside the directories the user named ever changes. The choices, case by case:

- A directory the user names (`--output_dir`, `--export_dir`, `--log_dir`, bench's `--out`):
  created if missing (`make_dirs`), followed if it is a link, since the user chose it. A path
  starting with `~` is refused (`check_no_tilde`): only a shell expands it, so a quoted
  `--output_dir='~/x'` would make a directory named `~` in the working directory. Refused rather
  than expanded, because the program would then print and store a path the user never typed.
- A directory a program makes inside one (OUTPUT_DIR/checkpoints, the graph picture's
  tensorboard/): a link there is refused (`check_subdirectory`), as is any link inside the
  checkpoints (`contents=True`): TensorFlow writes those files itself and would follow one.
- A directory replaced as a whole (an export, `replaced_directory`): built in a fresh directory
  beside it, then swapped in by one rename, RENAME_EXCHANGE (renameat2), so that a reader finds
  the whole old content or the whole new. It is refused when it is a link or holds a name the
  program would not write (replacing it would delete what is not the program's).
- Removing (`remove_tree`, `remove_file`): only what the program made; a link is unlinked, never
  followed (shutil.rmtree walks by file descriptors and does not follow links either).
- The lock file (`open_lock`): opened with O_NOFOLLOW, never replaced, since a lock works only
  while every run opens the same inode: a link, a directory or a pipe there is refused.
"""

import contextlib
import ctypes
import errno
import fcntl
import glob
import os
import shutil
import stat
import tempfile
from typing import Collection, Iterator

from engine.errors import ConfigError
from engine.run.writes import check_no_tilde, describe, sync_directory, umask

_RENAME_EXCHANGE = 2  # linux/fs.h


def make_dirs(path: str, flag: str) -> None:
    """Creates the directory the user named by `flag`, and its missing parents."""
    check_no_tilde(path, flag)
    os.makedirs(path, exist_ok=True)


def check_subdirectory(path: str, contents: bool = False) -> None:
    """Refuses a link at `path`, a directory a program makes itself (and, with `contents`, in it)."""
    inside = [entry.path for entry in os.scandir(path) if entry.is_symlink()] if contents and os.path.isdir(
        path) and not os.path.islink(path) else []
    for link in [path] * os.path.islink(path) + inside:
        raise ConfigError(f"{link} is {describe(link)}, and files are written only inside the directories named "
                          "on the command line: remove the link, or name another directory")


def remove_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def remove_tree(path: str) -> None:
    """Removes what a program made at `path` (a link: only the link); nothing there is fine."""
    if os.path.islink(path) or os.path.isfile(path):
        remove_file(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def open_lock(path: str) -> int:
    """The descriptor of lock file `path`, created if missing (0644).

    Raises:
      ConfigError: something other than a regular file is at `path`.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise
        descriptor = None
    if descriptor is None or not stat.S_ISREG(os.fstat(descriptor).st_mode):
        kind = describe(path)
        if descriptor is not None:
            os.close(descriptor)
        raise ConfigError(f"{path} is {kind}, not the lock file a run keeps there: remove it, or pass another "
                          "directory")
    return descriptor


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

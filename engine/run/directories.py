"""Every directory a program makes, removes or replaces, and its lock file: only where the user said.

Files are written by engine/run/writes.py; this is the rest of the same promise, that nothing
outside the directories the user named ever changes. The choices, case by case:

- A directory the user names (`--output_dir`, `--export_dir`, `--log_dir`, bench's `--out`):
  checked before any work, creating nothing (`check_output_dir`); created if missing
  (`make_dirs`), followed if it is a link, since the user chose it. A path starting with `~` is
  refused (`check_no_tilde`): only a shell expands it, so a quoted
  `--output_dir='~/x'` would make a directory named `~` in the working directory. Refused rather
  than expanded, because the program would then print and store a path the user never typed.
- A directory a program makes inside one (OUTPUT_DIR/checkpoints, the graph picture's
  tensorboard/): a link there is refused (`check_subdirectory`), as is any link inside the
  checkpoints (`contents=True`): TensorFlow writes those files itself and would follow one.
- A directory replaced as a whole (an export): engine/run/swap.py.
- Removing (`remove_tree`, `remove_file`): only what the program made; a link is unlinked, never
  followed (shutil.rmtree walks by file descriptors and does not follow links either).
- The lock file (`open_lock`): opened with O_NOFOLLOW, never replaced, since a lock works only
  while every run opens the same inode: a link, a directory or a pipe there is refused.
"""

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile

from engine.errors import ConfigError


def describe(path: str) -> str:
    """What is at `path`, for a message: 'a symbolic link (to X)', 'a directory', 'a file', ..."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)})"
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a file"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")


def check_no_tilde(path: str, flag: str) -> None:
    if re.match(r"~[^/]*(/|$)", path):
        raise ConfigError(f"{flag} {path} starts with '~', which only a shell expands (it was quoted): pass "
                          f"{os.path.expanduser(path)}, or leave the ~ unquoted")


def make_dirs(path: str, flag: str) -> None:
    """Creates the directory the user named by `flag`, and its missing parents."""
    check_no_tilde(path, flag)
    os.makedirs(path, exist_ok=True)


def check_output_dir(path: str, flag: str = "--output_dir") -> None:
    """Fails early (before any training) if files could not be written to `path`; creates nothing.

    A missing `path` is checked through its nearest existing ancestor, which must be a writable
    directory, so that a refused run leaves no empty directory behind. A path starting with an
    unexpanded `~` is refused (`check_no_tilde` says why).
    """
    check_no_tilde(path, flag)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is a file, not a directory: pass a directory path")
    existing = path
    while not os.path.exists(existing) and os.path.dirname(os.path.abspath(existing)) != os.path.abspath(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    try:
        if not os.path.isdir(existing):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.NamedTemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"{flag} {path} is not writable ({error.strerror}): pass a writable directory") from None


def check_subdirectory(path: str, contents: bool = False) -> None:
    """Refuses a link at `path`, a directory a program makes itself, and with `contents` a link in it."""
    links = [path] if os.path.islink(path) else []
    if contents and not links and os.path.isdir(path):
        links = sorted(entry.path for entry in os.scandir(path) if entry.is_symlink())
    if links:
        raise ConfigError(f"{links[0]} is {describe(links[0])}, and files are written only inside the directories "
                          "named on the command line: remove the link, or name another directory")


def remove_file(path: str) -> None:
    """Removes file (or link) `path`; nothing there is fine."""
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

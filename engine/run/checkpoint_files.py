"""The checkpoints on disk: found, checked and chosen before any of them is trusted.

A damaged or missing `checkpoint` index while `ckpt-*` files exist is refused, naming them,
rather than silently starting over on top of them (`resume_point`); `--resume_from` picks one
by hand; a checkpoint that does not read back is refused with the newest intact one named
(`_advice`, `intact`). What a killed run left half done, a `*_temp` folder of a save or a swap
of a start-over run's `checkpoints.new`, is finished or cleared when the next run (holding the
output directory's lock) opens the directory (`_recover`).
"""

import contextlib
import glob
import json
import logging
import os
import re
from typing import List, Optional

import tensorflow as tf

from engine.errors import ConfigError
from engine.run import directories, quiet, swap

IDENTITY_KEY = "identity/.ATTRIBUTES/VARIABLE_VALUE"  # where a checkpoint keeps its run's identity
HISTORY_KEY = "history/.ATTRIBUTES/VARIABLE_VALUE"  # and the history of the epochs it trained


def _number(path: str) -> int:
    found = re.search(r"-(\d+)$", path)
    return int(found.group(1)) if found else -1


def found_checkpoints(directory: str) -> List[str]:
    """The checkpoint path prefixes in `directory` (by their .index files), oldest first."""
    return sorted((path[:-len(".index")] for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*.index"))),
                  key=_number)


def intact(path: str) -> bool:
    """Whether every tensor of checkpoint `path` reads back (a cut data file does not)."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
        json.loads(reader.get_tensor(IDENTITY_KEY).decode())
    except (tf.errors.OpError, ValueError, IndexError, KeyError):
        return False
    return True


def _advice(refused: str) -> str:
    others = [path for path in found_checkpoints(os.path.dirname(refused)) if path != refused]
    good = next((path for path in reversed(others) if intact(path)), None)
    resume = f"pass --resume_from={good} to resume from the newest intact checkpoint, " if good else ""
    return f"{resume}--noresume to start over, or another --output_dir"


def resume_point(directory: str, resume: bool, resume_from: Optional[str] = None) -> Optional[str]:
    """The checkpoint to resume from: `resume_from`, else the index's newest, else None (start over).

    Raises:
      ConfigError: `ckpt-*` files are there but the index naming the newest is missing or damaged.
    """
    if resume_from or not resume:
        return resume_from
    found = found_checkpoints(directory)
    if not found:
        return None
    try:
        with index_warnings_off():
            state = tf.train.get_checkpoint_state(directory)
    except ValueError:
        state = None
    newest = state.model_checkpoint_path if state is not None else None
    if newest not in found:
        names = ", ".join(os.path.basename(path) for path in found)
        raise ConfigError(f"{directory}/checkpoint, the index of the checkpoints, is missing or damaged, and {names} "
                          f"are there: pass --resume_from={found[-1]} to resume from the newest, --noresume to "
                          "start over, or another --output_dir")
    return newest


@contextlib.contextmanager
def index_warnings_off():
    """Silences TensorFlow's Python warnings while a checkpoint index is read: a damaged index makes
    it log the parse error and "Checkpoint ignored", lines the run's own one-line error says better."""
    with quiet.logger_level("tensorflow", logging.ERROR):
        yield


def check_directory(directory: str) -> None:
    """Refuses a checkpoint directory that is a file, a link, or holds a link (TensorFlow would follow it)."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"{directory} is a file, not the checkpoint directory: move it away, or pass another "
                          "--output_dir")
    directories.check_subdirectory(directory, contents=True)


def _recover(directory: str) -> None:
    """Finishes what a killed run left half done: a swap of `.new` in, `*_temp` folders of a save.

    (`swap.exchange` swaps in one rename; where it falls back to three, a kill between them
    leaves the directory at `.old` or missing.)
    """
    for aside in (f"{directory}.new", f"{directory}.old"):
        swap.restore(aside, directory)
    directories.remove_tree(f"{directory}.new")  # a start-over run that died before its first save
    directories.remove_tree(f"{directory}.old")
    for temporary in glob.glob(os.path.join(glob.escape(directory), "*_temp")):
        directories.remove_tree(temporary)


def epochs_trained(path: str) -> Optional[int]:
    """How many epochs checkpoint `path` has trained, read from its history alone (no model needed:
    a run can say it before loading any data); None when it cannot be read (the restore says why)."""
    try:
        return len(json.loads(tf.train.load_checkpoint(path).get_tensor(HISTORY_KEY).decode()))
    except (tf.errors.OpError, ValueError, TypeError, IndexError):  # IndexError: a cut data file
        return None


def check_epochs(path: str, trained: int, epochs: int) -> None:
    """Refuses to resume checkpoint `path`, `trained` epochs in, with fewer `--epochs`."""
    if trained > epochs:
        raise ConfigError(f"{path} has {trained} epochs trained, more than --epochs={epochs}: pass "
                          f"--epochs={trained} or more to resume it, --noresume to start over, or another "
                          "--output_dir (the output directory resumes by default)")

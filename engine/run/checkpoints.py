"""Checkpoints: everything a run needs to continue as if it had never stopped.

A checkpoint holds the model's weights, the optimizer's (its slots, `iterations`, learning
rate: engine/optimizers/optimizer.py names them), the running loss/accuracy sums of the epoch in progress, where the run is (epoch, steps
of it done), the history of finished epochs, the state of callbacks that have one (early
stopping's best epoch and weights), and the settings that define the run (`identity`).
The shuffle order is not stored: `batches.epoch_batches` recomputes it from (seed, epoch), so
skipping the steps already done continues with exactly the batches that were left.

Writes are atomic: `tf.train.CheckpointManager` writes the data files first, then points the
small `checkpoint` index at them with a rename. A crash mid-write leaves the index on the
previous, complete checkpoint.

A new checkpoint is only *pending* until the loss of the state it holds is known to be sane:
the first loss of the next compiled call is that state's loss. Then it is `confirm`ed, and only
then are older checkpoints pruned to the `max_to_keep` newest confirmed ones. When the run
diverges instead, its pending checkpoints are `discard`ed and the index is put back as it was:
a diverging run never rotates the last good checkpoint out, nor leaves its exploded state as
the one to resume from.

What is on disk is trusted only after it is checked (`engine.run.checkpoint_files`). A run that starts over (`--noresume`) writes into `checkpoints.new`
and swaps it in when its first checkpoint is complete: until then the old run's checkpoints are
untouched, so a new run that fails its checks or dies early has deleted nothing.

TensorFlow writes the checkpoint files itself, and would write through a link planted among
them: a link at the directory or in it is refused before the first and before every save
(`directories.check_subdirectory`). The index this class rewrites goes through engine/run/writes.py.
"""

import dataclasses
import glob
import json
import os
from typing import Dict, List, Optional

import tensorflow as tf

from engine.errors import ConfigError
from engine.run import directories, quiet, swap, writes
from engine.run.checkpoint_files import (IDENTITY_KEY, _advice, _recover, check_directory, found_checkpoints,
                                         index_warnings_off)


def optimizer_identity(optimizer) -> str:
    """`SGD(momentum=0.9, nesterov=False, weight_decay=None)`: the optimizer's kind and settings
    (`Optimizer.get_config`), but not its learning rate, which a resumed run may change."""
    settings = {name: value for name, value in optimizer.get_config().items() if name != "learning_rate"}
    return f"{type(optimizer).__name__}({', '.join(f'{name}={value!r}' for name, value in settings.items())})"


def _upgraded(stored: dict) -> dict:
    """An identity as this version writes it. Checkpoints written before --precision were float32's;
    those written before the optimizers had a base class name no optimizer: they were SGD's, with the job's `momentum` and `nesterov` beside the
    other settings (a library user's had neither: plain SGD). So a run started before the change
    resumes after it."""
    stored = {"precision": "float32", **stored}  # before --precision, every run was float32
    if "optimizer" in stored:
        return stored
    momentum, nesterov = stored.pop("momentum", 0.0), stored.pop("nesterov", False)
    stored["optimizer"] = f"SGD(momentum={momentum!r}, nesterov={nesterov!r}, weight_decay=None)"
    return stored


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a run stands: in `epoch` (from 1), `step` steps done, after the epochs in `history`."""

    epoch: int = 1
    step: int = 0
    history: List[dict] = dataclasses.field(default_factory=list)
    first_loss: float = 0.0  # the run's first step's loss, the untrained model's (0: not yet known)


class Checkpointer:
    """Saves and restores a `Trainer`'s whole state in `directory`.

    Args:
      directory: e.g. OUTPUT_DIR/checkpoints; created on the first save.
      trainer: its model, optimizer and metrics are saved (all must be built before `restore`).
      identity: the settings that must match to resume (model shape, data, batch size, seed): a
        checkpoint of another run is refused by name, not with a TF traceback. The optimizer's
        kind and settings are added to it here (`optimizer_identity`): a checkpoint's slots fit
        only the optimizer that wrote them.
      max_to_keep: checkpoints kept; older ones are deleted after a newer one is complete.
      states: more trackable state to save by name (a callback that is a `tf.Module`, such as
        `EarlyStopping`); the identity should name what makes these present.
    """

    def __init__(self, directory: str, trainer, identity: dict, max_to_keep: int = 2,
                 states: Optional[Dict[str, tf.Module]] = None, replace: bool = False):
        check_directory(directory)
        _recover(directory)
        self.directory, self.max_to_keep = directory, max_to_keep
        self._staging = f"{directory}.new" if replace and found_checkpoints(directory) else None
        if self._staging:
            directories.remove_tree(self._staging)
        identity = {**identity, "optimizer": optimizer_identity(trainer.optimizer)}
        self.identity = json.loads(json.dumps(identity))  # as it reads back: tuples become lists
        self._epoch = tf.Variable(1, dtype=tf.int64, trainable=False)
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False)
        self._first_loss = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self._identity = tf.Variable(json.dumps(self.identity, sort_keys=True), dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            model=trainer.model, optimizer=trainer.optimizer, loss=trainer.train_loss,
            metrics={metric.name: metric for metric in trainer.train_metrics}, epoch=self._epoch, step=self._step,
            history=self._history, first_loss=self._first_loss, identity=self._identity, **(states or {}))
        self.manager = self._manager(self._staging or directory)
        self._kept = [] if self._staging else found_checkpoints(directory)  # confirmed, oldest first
        self._pending: List[str] = []
        self._index = self._read_index()

    def _manager(self, directory: str) -> tf.train.CheckpointManager:
        # max_to_keep=None: the manager deletes nothing; pruning waits for confirmation (`confirm`)
        try:
            with index_warnings_off():
                return tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=None)
        except ValueError:  # an index without a checkpoint path: already refused or overridden (resume_point)
            directories.remove_file(os.path.join(directory, "checkpoint"))
            return tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=None)

    def _read_index(self) -> Optional[bytes]:
        index = os.path.join(self.directory, "checkpoint")
        return open(index, "rb").read() if os.path.isfile(index) else None

    def _write_index(self, content: Optional[bytes]) -> None:
        index = os.path.join(self.directory, "checkpoint")
        if content is None:
            directories.remove_file(index)
        else:
            writes.write_bytes(index, content)
        self.manager = self._manager(self.directory)

    @property
    def kept(self) -> Optional[str]:
        """The newest confirmed checkpoint (its state's loss was checked), or None."""
        return self._kept[-1] if self._kept else None

    def confirm(self) -> None:
        """The pending checkpoints hold sane states: keep them, and prune to the `max_to_keep` newest."""
        if not self._pending:
            return
        self._kept = [path for path in self._kept if path not in self._pending] + self._pending
        self._pending = []
        for path in self._kept[:-self.max_to_keep]:
            for file in glob.glob(f"{glob.escape(path)}.*"):
                directories.remove_file(file)
        self._kept = self._kept[-self.max_to_keep:]
        names = [os.path.basename(path) for path in self._kept]
        self._write_index("".join([f'model_checkpoint_path: "{names[-1]}"\n',
                                   *(f'all_model_checkpoint_paths: "{name}"\n' for name in names)]).encode())
        self._index = self._read_index()

    def discard(self) -> None:
        """The run diverged: deletes its pending checkpoints and puts the index back as it was."""
        if self._staging:
            directories.remove_tree(self._staging)
        for path in self._pending:
            for file in glob.glob(f"{glob.escape(path)}.*"):
                directories.remove_file(file)
        if self._pending:
            self._pending = []
            self._write_index(self._index)

    @property
    def replacing(self) -> bool:
        """Whether this run starts over beside checkpoints it will delete at its first save."""
        return self._staging is not None

    @property
    def latest(self) -> Optional[str]:
        """The newest complete checkpoint's path prefix (e.g. .../ckpt-3), or None."""
        if self._staging:
            return None
        return self.manager.latest_checkpoint

    def restore(self, path: Optional[str] = None) -> Position:
        """Loads checkpoint `path` (default: the newest) into the trainer; returns where that run stood.

        Raises:
          ConfigError: the checkpoint is of a run with other settings, or cannot be read (the newest
            intact one is named).
        """
        path = path or self.latest
        stored = self._stored_identity(path)
        differences = [f"{key} {stored.get(key)!r} there, {value!r} now"
                       for key, value in self.identity.items() if stored.get(key) != value]
        if differences:
            raise ConfigError(f"{path} is a checkpoint of a different run ({'; '.join(differences)}): pass "
                              "the same flags to resume it, --noresume to start over, or another --output_dir")
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise ConfigError(f"{path} cannot be restored ({reason}): {_advice(path)}") from None
        return Position(int(self._epoch.numpy()), int(self._step.numpy()),
                        json.loads(self._history.numpy().decode()), float(self._first_loss.numpy()))

    def save(self, position: Position) -> str:
        """Writes the trainer's state at `position`; returns the checkpoint's path prefix."""
        self._epoch.assign(position.epoch)
        self._step.assign(position.step)
        self._history.assign(json.dumps(position.history))
        self._first_loss.assign(position.first_loss)
        check_directory(self._staging or self.directory)  # a link planted since the last save
        with quiet.absl_verbosity("warning"):  # TF logs an INFO line per save
            path = self.manager.save()
        if self._staging:  # the new run's first checkpoint is complete: now the old run's may go
            swap.exchange(self._staging, self.directory, aside=f"{self.directory}.old")
            directories.remove_tree(self._staging)  # now the old run's checkpoints
            self._staging = None
            self.manager = self._manager(self.directory)
            path = os.path.join(self.directory, os.path.basename(path))
            self._kept, self._index = [], None
        self._pending.append(path)
        return path

    def _stored_identity(self, path: str) -> dict:
        try:
            return _upgraded(json.loads(tf.train.load_checkpoint(path).get_tensor(IDENTITY_KEY).decode()))
        except (tf.errors.OpError, ValueError, IndexError) as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise ConfigError(f"{path} is not a readable scratchflow checkpoint ({reason}): {_advice(path)}") from None

"""Checkpoints: everything a run needs to continue as if it had never stopped.

A checkpoint holds the model's weights, the optimizer's (velocity slots, `iterations`, learning
rate), the running loss/accuracy sums of the epoch in progress, where the run is (epoch, steps
of it done), the history of finished epochs, the state of callbacks that have one (early
stopping's best epoch and weights), and the settings that define the run (`identity`).
The shuffle order is not stored: `batches.epoch_batches` recomputes it from (seed, epoch), so
skipping the steps already done continues with exactly the batches that were left.

Writes are atomic: `tf.train.CheckpointManager` writes the data files first, then points the
small `checkpoint` index at them with a rename. A crash mid-write leaves the index on the
previous, complete checkpoint; the two newest are kept.
"""

import dataclasses
import json
from typing import Dict, List, Optional

import tensorflow as tf
from absl import logging as absl_logging

from engine.errors import ConfigError

_IDENTITY_KEY = "identity/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a run stands: in `epoch` (from 1), `step` steps done, after the epochs in `history`."""

    epoch: int = 1
    step: int = 0
    history: List[dict] = dataclasses.field(default_factory=list)


class Checkpointer:
    """Saves and restores a `Trainer`'s whole state in `directory`.

    Args:
      directory: e.g. OUTPUT_DIR/checkpoints; created on the first save.
      trainer: its model, optimizer and metrics are saved (all must be built before `restore`).
      identity: the settings that must match to resume (model shape, data, batch size, seed,
        optimizer): a checkpoint of another run is refused by name, not with a TF traceback.
      max_to_keep: checkpoints kept; older ones are deleted after a newer one is complete.
      states: more trackable state to save by name (a callback that is a `tf.Module`, such as
        `EarlyStopping`); the identity should name what makes these present.
    """

    def __init__(self, directory: str, trainer, identity: dict, max_to_keep: int = 2,
                 states: Optional[Dict[str, tf.Module]] = None):
        self.directory = directory
        self.identity = json.loads(json.dumps(identity))  # as it reads back: tuples become lists
        self._epoch = tf.Variable(1, dtype=tf.int64, trainable=False)
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False)
        self._identity = tf.Variable(json.dumps(self.identity, sort_keys=True), dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            model=trainer.model, optimizer=trainer.optimizer, loss=trainer.train_loss,
            accuracy=trainer.train_accuracy, epoch=self._epoch, step=self._step,
            history=self._history, identity=self._identity, **(states or {}))
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

    @property
    def latest(self) -> Optional[str]:
        """The newest complete checkpoint's path prefix (e.g. .../ckpt-3), or None."""
        return self.manager.latest_checkpoint

    def restore(self) -> Position:
        """Loads the newest checkpoint into the trainer; returns where that run stood.

        Raises:
          ConfigError: the checkpoint is of a run with other settings, or cannot be read.
        """
        path = self.latest
        stored = self._stored_identity(path)
        differences = [f"{key} {stored.get(key)!r} there, {value!r} now"
                       for key, value in self.identity.items() if stored.get(key) != value]
        if differences:
            raise ConfigError(f"{path} is a checkpoint of a different run ({'; '.join(differences)}): pass "
                              "the same flags to resume it, --noresume to start over, or another --output_dir")
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ConfigError(f"{path} cannot be restored ({reason}): pass --noresume to start over") from None
        return Position(int(self._epoch.numpy()), int(self._step.numpy()),
                        json.loads(self._history.numpy().decode()))

    def save(self, position: Position) -> str:
        """Writes the trainer's state at `position`; returns the checkpoint's path prefix."""
        self._epoch.assign(position.epoch)
        self._step.assign(position.step)
        self._history.assign(json.dumps(position.history))
        verbosity = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.WARNING)  # TF logs an INFO line per save
        try:
            return self.manager.save()
        finally:
            absl_logging.set_verbosity(verbosity)

    def _stored_identity(self, path: str) -> dict:
        try:
            return json.loads(tf.train.load_checkpoint(path).get_tensor(_IDENTITY_KEY).decode())
        except (tf.errors.OpError, ValueError, IndexError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ConfigError(f"{path} is not a readable scratchflow checkpoint ({reason}): "
                              "pass --noresume to start over, or another --output_dir") from None

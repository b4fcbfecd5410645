"""Early stopping: end training once the validation score has stopped improving, keep the best weights.

Training loss keeps falling long after the model has begun to memorise its training set; the
loss on held-out data turns back up. Early stopping watches a validation metric at the end of
every epoch and, Keras's rule:

    improved  = monitored < best - min_delta        (mode "min", for val_loss)
              = monitored > best + min_delta        (mode "max", for val_accuracy)
    wait      = 0 if improved else wait + 1
    stop when wait >= patience

so `patience` epochs in a row without an improvement of more than `min_delta` end training.
The weights of the best epoch are copied when it happens and written back into the model at the
end of training, whether it stopped early or ran out of epochs (as Keras 3 does), so the model a
job evaluates and exports is always the best one. Only the weights are restored, not the
optimizer's momentum.

The state (best value and epoch, wait count, where it stopped, the best weights) is held in
variables, so a checkpoint that includes this callback (`engine.run.checkpoints`) resumes it:
a run stopped half-way and resumed stops where the uninterrupted run stops.
"""

from typing import Dict, List, Optional

import tensorflow as tf

from engine.callbacks import Callback
from engine.run.config import EARLY_STOPPING_MONITORS

MONITORS = dict(zip(EARLY_STOPPING_MONITORS, ("min", "max")))  # the mode follows from the metric


class EarlyStopping(tf.Module, Callback):
    """A callback for `Trainer.fit` that sets `trainer.stop_training`; the trainer's model must be built.

    Example:
      >>> stopper = EarlyStopping(trainer, monitor="val_loss", patience=3)
      >>> trainer.fit(x, y, epochs=100, batch_size=32, validation_data=(vx, vy), callbacks=[stopper])
      >>> stopper.stopped_epoch, stopper.best_epoch
      (9, 6)
    """

    def __init__(self, trainer, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0):
        if monitor not in MONITORS:
            raise ValueError(f"early stopping monitors one of {', '.join(MONITORS)}, got {monitor!r}")
        if patience < 1:
            raise ValueError(f"early stopping patience must be >= 1 epoch, got {patience}")
        if min_delta < 0:
            raise ValueError(f"early stopping min_delta must be >= 0, got {min_delta}")
        super().__init__(name="early_stopping")
        self.trainer, self.monitor, self.patience, self.min_delta = trainer, monitor, patience, min_delta
        self.mode = MONITORS[monitor]
        # Epoch numbers count from 1, so 0 means "none yet" (no best epoch, did not stop).
        self._best = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="best")
        self._best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
        self._stopped_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="stopped_epoch")
        self._wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")
        self._best_weights = [tf.Variable(variable, trainable=False, name="best_weights")
                              for variable in trainer.model.trainable_variables]

    @property
    def best(self) -> Optional[float]:
        return float(self._best.numpy()) if self.best_epoch else None

    @property
    def best_epoch(self) -> Optional[int]:
        return int(self._best_epoch.numpy()) or None

    @property
    def stopped_epoch(self) -> Optional[int]:
        """The epoch training stopped after; None while it runs, or if it ran all its epochs."""
        return int(self._stopped_epoch.numpy()) or None

    @property
    def wait(self) -> int:
        return int(self._wait.numpy())

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: Dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ValueError(f"early stopping monitors {self.monitor!r}, but the epoch's logs have only "
                             f"{', '.join(logs)}: pass validation data to fit")
        value = float(logs[self.monitor])
        if self._improved(value):
            self._best.assign(value)
            self._best_epoch.assign(epoch)
            self._wait.assign(0)
            for best, variable in zip(self._best_weights, self.trainer.model.trainable_variables):
                best.assign(variable)
            return
        self._wait.assign_add(1)
        if self.wait >= self.patience:
            self._stopped_epoch.assign(epoch)
            logs["stopped_early"] = True  # kept in the history: a rerun knows the run is over
            self.trainer.stop_training = True

    def on_train_end(self, history: List[Dict[str, float]]) -> None:
        self.restore_best_weights()

    def restore_best_weights(self) -> None:
        """Writes the best epoch's weights back into the model (nothing to do before the first epoch)."""
        if self.best_epoch is None:
            return
        for variable, best in zip(self.trainer.model.trainable_variables, self._best_weights):
            variable.assign(best)

    def summary(self) -> str:
        """One line for the log: where training stopped, and which epoch's weights the model now holds."""
        where = f"stopped after epoch {self.stopped_epoch}" if self.stopped_epoch else "ran every epoch"
        return (f"Early stopping ({self.monitor}, patience {self.patience}, min_delta {self.min_delta:g}): "
                f"{where}; best {self.monitor} {self.best:.4f} at epoch {self.best_epoch}, its weights restored")

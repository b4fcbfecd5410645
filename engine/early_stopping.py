"""Early stopping: end training once the validation score has stopped improving, keep the best weights.

Training loss keeps falling long after the model has begun to memorise its training set; the
loss on held-out data turns back up. Early stopping watches a validation metric at the end of
every epoch and, Keras's rule:

    improved  = monitored < best - min_delta        (mode "min", for val_loss)
              = monitored > best + min_delta        (mode "max", for val_accuracy)
    wait      = 0 if improved else wait + 1
    stop when wait >= patience

so `patience` epochs in a row without an improvement of more than `min_delta` end training.
The weights of the best epoch are copied when it happens and written back into the model when
training stops; when the epochs run out first, the job calls `restore_best_weights()` after
`fit` (Keras 3 restores at the end of training either way), so the model a job evaluates and
exports is always the best one. Only the weights are restored, not the optimizer's momentum.
"""

from typing import Dict, List, Optional

import numpy as np

from engine.config import EARLY_STOPPING_MONITORS

MONITORS = dict(zip(EARLY_STOPPING_MONITORS, ("min", "max")))  # the mode follows from the metric


class EarlyStopping:
    """An epoch-end callback for `Trainer.fit` that sets `trainer.stop_training`.

    Example:
      >>> stopper = EarlyStopping(trainer, monitor="val_loss", patience=3)
      >>> trainer.fit(x, y, epochs=100, batch_size=32, validation_data=(vx, vy), on_epoch_end=[stopper])
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
        self.trainer, self.monitor, self.patience, self.min_delta = trainer, monitor, patience, min_delta
        self.mode = MONITORS[monitor]
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None  # None while training runs, or if it ran all its epochs
        self.wait = 0
        self._best_weights: Optional[List[np.ndarray]] = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def __call__(self, logs: Dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ValueError(f"early stopping monitors {self.monitor!r}, but the epoch's logs have only "
                             f"{', '.join(logs)}: pass validation data to fit")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, int(logs["epoch"]), 0
            self._best_weights = [variable.numpy() for variable in self.trainer.model.trainable_variables]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(logs["epoch"])
            logs["stopped_early"] = True  # kept in the history and its checkpoint: a resumed run knows it is over
            self.trainer.stop_training = True
            self.restore_best_weights()

    def restore_best_weights(self) -> None:
        """Writes the best epoch's weights back into the model (nothing to do before the first epoch)."""
        if self._best_weights is None:
            return
        for variable, value in zip(self.trainer.model.trainable_variables, self._best_weights):
            variable.assign(value)

    def summary(self) -> str:
        """One line for the log: where training stopped, and which epoch's weights the model now holds."""
        where = f"stopped after epoch {self.stopped_epoch}" if self.stopped_epoch else "ran every epoch"
        return (f"Early stopping ({self.monitor}, patience {self.patience}, min_delta {self.min_delta:g}): "
                f"{where}; best {self.monitor} {self.best:.4f} at epoch {self.best_epoch}, its weights restored")

"""The callback that makes a run survive: check, checkpoint, stop on a signal.

`Trainer.fit` stays a plain epoch loop; after each compiled call and each epoch this callback
decides what happens, in an order that matters:

1. the block's losses are checked first (`engine.run.faults`): a NaN, or a loss above
   `divergence_factor` times the run's first step's, raises before anything is saved;
2. then the checkpoints written since the previous check are confirmed (this block's first loss
   is the loss of the state they hold), and a checkpoint is written when the global step reaches a
   multiple of `checkpoint_every` (`fit` ends its compiled blocks on those steps, so the boundary
   is exact), after checking that every weight is finite; on a divergence the unconfirmed ones
   are discarded — the last good checkpoint is never replaced by a diverged one;
3. then a pending SIGINT/SIGTERM (`engine.run.interrupts`) saves, if step 2 did not, and stops.
"""

from typing import List, Optional

import tensorflow as tf

from engine.callbacks import Callback
from engine.run import faults
from engine.run.checkpoints import Checkpointer, Position
from engine.run.interrupts import Interrupted, SignalStop


class Safeguards(Callback):
    """A callback for `Trainer.fit`; give `fit` the start's epoch and step as `initial_epoch`
    and `initial_step` (`fit_arguments()`), and put this callback after any that change the
    logs or the weights at an epoch's end (early stopping), so that the checkpoint holds them.

    Args:
      checkpointer: where the state goes.
      variables: checked to be finite before each save (the model's weights).
      start: where the run begins (a restored `Position`, or the beginning); its history is
        continued, so every checkpoint holds every epoch of the run.
      checkpoint_every: also save every this many steps (counted across epochs); 0: epoch ends only.
      stop: the signal flag to honour, or None.
      divergence_factor: stop when a loss exceeds this times the run's first step's (0: NaN/Inf only).
    """

    def __init__(self, checkpointer: Checkpointer, variables: List[tf.Variable], start: Optional[Position] = None,
                 checkpoint_every: int = 0, stop: Optional[SignalStop] = None, divergence_factor: float = 100.0):
        self.checkpointer, self.variables, self.position = checkpointer, variables, start or Position()
        self.history = list(self.position.history)
        self.first_loss, self.divergence_factor = self.position.first_loss, divergence_factor
        self.cut_every, self.stop = checkpoint_every, stop
        self.steps_per_epoch = 0

    def fit_arguments(self) -> dict:
        """Where `fit` begins: `initial_epoch` and `initial_step` of the start."""
        return {"initial_epoch": self.position.epoch, "initial_step": self.position.step}

    def on_train_begin(self, steps_per_epoch: int) -> None:
        if self.position.step > steps_per_epoch:
            raise ValueError(f"the checkpoint is at step {self.position.step} of an epoch of {steps_per_epoch} steps")
        self.steps_per_epoch = steps_per_epoch

    def global_step(self, epoch: int, step: int) -> int:
        return (epoch - 1) * self.steps_per_epoch + step

    def on_block_end(self, epoch: int, step: int, losses: tf.Tensor) -> None:
        """After a compiled call that ended on `step` of `epoch`: check, maybe save, maybe stop."""
        if not self.first_loss:  # the untrained model's loss, kept in every checkpoint of the run
            self.first_loss = float(losses[0])
        try:
            faults.check_losses(losses, epoch, step, self.first_loss, self.divergence_factor)
        except faults.NumericalFault as fault:
            raise self._diverged(fault) from None
        self.checkpointer.confirm()  # the block's first loss is that of the state last saved: it is sane
        saved = False
        if self.cut_every and self.global_step(epoch, step) % self.cut_every == 0:
            self._save(self._at(epoch, step))
            saved = True
        self._stop_if_asked(self._at(epoch, step), saved)

    def _at(self, epoch: int, step: int) -> Position:
        return Position(epoch, step, list(self.history), self.first_loss)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After epoch `epoch` is logged: always save (the next epoch, step 0), maybe stop."""
        self.history.append(logs)
        position = self._at(epoch + 1, 0)
        self._save(position)
        self._stop_if_asked(position, saved=True)

    def _save(self, position: Position) -> None:
        try:
            faults.check_variables(self.variables, position.epoch, position.step)
        except faults.NumericalFault as fault:
            raise self._diverged(fault) from None
        self.checkpointer.save(position)
        self.position = position

    def on_train_end(self, history) -> None:
        self.checkpointer.confirm()  # the final state: nothing comes after it to check it by

    def _diverged(self, fault: faults.NumericalFault) -> faults.NumericalFault:
        self.checkpointer.discard()  # what this run saved since its last sane loss
        kept = self.checkpointer.kept
        where = f"the last good checkpoint, {kept}, is kept" if kept else "no good checkpoint was written"
        return faults.NumericalFault(f"{fault}; {where}. Lower --learning_rate, or check the data")

    def _stop_if_asked(self, position: Position, saved: bool) -> None:
        if self.stop is None or not self.stop.requested:
            return
        if not saved:
            self._save(position)
        raise Interrupted(self.stop.requested, f"stopped by {self.stop.name} at epoch {position.epoch}, step "
                                               f"{position.step}; checkpoint written to {self.checkpointer.latest}")

"""Callbacks: what runs around the training loop without being part of it.

`Trainer.fit` is the plain loop (epochs, shuffled batches, compiled calls, metrics). Everything a
real run adds around it, such as checkpoints and resuming, stopping on a NaN or a signal, early
stopping, TensorBoard or a progress bar, is a callback that `fit` calls at four points:

    on_train_begin(steps_per_epoch)       before the first step
    on_block_end(epoch, step, losses)     after each compiled call: `step` steps of `epoch` are
                                          done; `losses` holds the call's K batch losses
    on_epoch_end(epoch, logs)             once the epoch's logs (validation included) are complete
    on_train_end(history)                 after the last epoch, or the one a callback stopped at

A callback ends training after the current epoch by setting `trainer.stop_training` (as in
Keras), or at once by raising. One that must act after exactly every N-th step (a checkpoint
every N steps) sets `cut_every = N`, and `fit` ends its compiled calls on those steps.
Callbacks run in the order given, so one may rely on another having seen the same event.
"""

import math
from typing import Callable, Dict, List, Optional, Sequence

import tensorflow as tf

Logs = Dict[str, float]


class Callback:
    """The hooks `Trainer.fit` calls; each does nothing unless a subclass overrides it."""

    cut_every: int = 0  # end compiled calls on multiples of this global step (0: no need)

    def on_train_begin(self, steps_per_epoch: int) -> None:
        """Before the first step; `steps_per_epoch` counts the last, smaller batch too."""

    def on_block_end(self, epoch: int, step: int, losses: tf.Tensor) -> None:
        """After a compiled call that ended on `step` (counted from 1 within `epoch`)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """After `epoch` (from 1) with its logs: loss, accuracy, val_*, seconds, steps_per_second."""

    def on_train_end(self, history: List[Logs]) -> None:
        """After the last epoch trained, with the logs of the epochs this `fit` ran."""


def cut_every(callbacks: Sequence[Callback]) -> int:
    """The steps a compiled call must end on so that every callback's `cut_every` is met: their gcd (0: none)."""
    return math.gcd(*(callback.cut_every for callback in callbacks))


class LambdaCallback(Callback):
    """A callback from plain functions, as Keras's `LambdaCallback`: for the one-liners of tests
    and experiments (record every loss, snapshot the weights at each epoch's end).

    Example:
      >>> losses = []
      >>> trainer.fit(x, y, 2, 32, callbacks=[LambdaCallback(on_block_end=lambda e, s, l: losses.extend(l.numpy()))])
    """

    def __init__(self, on_block_end: Optional[Callable[[int, int, tf.Tensor], None]] = None,
                 on_epoch_end: Optional[Callable[[int, Logs], None]] = None):
        if on_block_end is not None:
            self.on_block_end = on_block_end
        if on_epoch_end is not None:
            self.on_epoch_end = on_epoch_end

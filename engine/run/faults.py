"""Numerical faults: a loss or a weight that is no longer a finite number stops training at once.

Once a NaN or an Inf enters the weights it never leaves: every later step computes NaN, and an
epoch of them would waste time and, worse, overwrite a good checkpoint with garbage. So the loss
of every step is checked after each compiled call (K floats, cheap), and the weights once more
before each checkpoint is written: with a huge learning rate, the step whose loss is still finite
can already have pushed a weight to Inf (`--learning_rate=1e6` on Fashion-MNIST: loss 2.4 at
step 1, 1.7e17 at step 2, NaN from step 3). Free of TensorFlow imports, so that `train.py` can
name `NumericalFault` before TensorFlow is loaded.
"""

from typing import Sequence

import numpy as np


class NumericalFault(RuntimeError):
    """Training produced a NaN or Inf; the message says where (epoch, step) and in which tensor."""


def check_losses(losses, epoch: int, last_step: int) -> None:
    """Raises `NumericalFault` naming the first step of a block whose loss is not finite.

    Args:
      losses: the block's K batch losses (a tensor or array), in step order.
      epoch: the epoch the block belongs to, from 1.
      last_step: the step (within the epoch, from 1) the block ended on.
    """
    values = np.asarray(losses)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        first = int(bad[0])
        step = last_step - len(values) + first + 1
        raise NumericalFault(f"the loss is {values[first]} at epoch {epoch}, step {step}: training diverged")


def check_variables(variables: Sequence, epoch: int, step: int) -> None:
    """Raises `NumericalFault` naming the first variable (a `tf.Variable`) holding a NaN or Inf."""
    for variable in variables:
        values = variable.numpy()
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "Inf"
            raise NumericalFault(f"variable {variable.name} holds {kind} after epoch {epoch}, step {step}: "
                                 "training diverged")

"""Numerical faults: a loss or a weight that is no longer a finite number stops training at once.

Once a NaN or an Inf enters the weights it never leaves: every later step computes NaN, and an
epoch of them would waste time and, worse, overwrite a good checkpoint with garbage. So the loss
of every step is checked after each compiled call (K floats, cheap), and the weights once more
before each checkpoint is written: with a huge learning rate, the step whose loss is still finite
can already have pushed a weight to Inf (`--learning_rate=1e6` on Fashion-MNIST: loss 2.4 at
step 1, 1.7e17 at step 2, NaN from step 3). Free of TensorFlow imports, so that `train.py` can
name `NumericalFault` before TensorFlow is loaded.

A finite loss can diverge too: with `--hidden=32`, learning rates of 1e3 to 1e6 drive the loss
to 1e12-1e30 without ever reaching Inf. So a loss above a bound also stops the run: `factor`
times the run's first step's loss, which is the untrained model's (about ln 10 = 2.3 for ten
classes). A model that learns never comes near 100 times its starting loss; one that diverges
passes it within a few steps, before its exploded state is checkpointed.

`RunFault` is the family of what stops a run through no bad input of the user's (a diverged
loss, a full disk): one line and exit status 1.
"""

from typing import Sequence

import numpy as np


class RunFault(RuntimeError):
    """A run stopped by something other than the user's input (exit status 1); the message is one line."""


class NumericalFault(RunFault):
    """Training produced a NaN or Inf, or a loss past the divergence bound; the message says where."""


def check_losses(losses, epoch: int, last_step: int, first_loss: float = 0.0, factor: float = 0.0) -> None:
    """Raises `NumericalFault` naming the first step of a block whose loss is not finite, or above
    `factor * first_loss` (when both are > 0).

    Args:
      losses: the block's K batch losses (a tensor or array), in step order.
      epoch: the epoch the block belongs to, from 1.
      last_step: the step (within the epoch, from 1) the block ended on.
      first_loss: the run's first step's loss; factor: how many times that a loss may reach.
    """
    values = np.asarray(losses, np.float64)
    bound = factor * first_loss if factor > 0 and first_loss > 0 else np.inf
    bad = np.flatnonzero(~(values <= bound))  # NaN compares false: caught here too
    if bad.size:
        first = int(bad[0])
        step = last_step - len(values) + first + 1
        above = (f", above {factor:g}x the first step's loss {first_loss:.4g} (--divergence_factor)"
                 if np.isfinite(values[first]) else "")
        raise NumericalFault(f"the loss is {values[first]:.6g} at epoch {epoch}, step {step}{above}: training diverged")


def one_line(message: object, limit: int = 800) -> str:
    """`message` as one line of at most `limit` characters: an error line is read, not scrolled
    (a flag echoing 3,000 layer sizes made one of 5,662 characters).

    Whitespace runs (a newline in a path too) become one space and other control characters are
    escaped (`\\x1b`: a terminal would obey them). A line too long has its longest words (paths,
    long values) cut in the middle first, so that the reason and the fix after them stay.
    """
    words = printable(str(message)).split()
    while len(" ".join(words)) > limit:
        longest = max(range(len(words)), key=lambda index: len(words[index]))
        keep = len(words[longest]) - (len(" ".join(words)) - limit) - 3
        if keep < 40:
            keep = 40
        if keep + 3 >= len(words[longest]):
            break
        word = words[longest]
        words[longest] = f"{word[:keep // 2]}...{word[len(word) - (keep - keep // 2):]}"
    text = " ".join(words)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def printable(text: str) -> str:
    """`text` with control characters other than whitespace escaped (ESC as \\x1b), for a terminal."""
    return "".join(char if char.isprintable() or char in " \t\n\r" else
                   char.encode("unicode_escape").decode("ascii") for char in text)


def describe_os_error(error: OSError, kept: str = "") -> str:
    """One line for an OSError met while writing (a full disk, a vanished directory), capped in length."""
    where = f" writing {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}{'; ' + kept if kept else ''}"[:600]


def check_variables(variables: Sequence, epoch: int, step: int) -> None:
    """Raises `NumericalFault` naming the first variable (a `tf.Variable`) holding a NaN or Inf."""
    for variable in variables:
        values = variable.numpy()
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "Inf"
            raise NumericalFault(f"variable {variable.name} holds {kind} after epoch {epoch}, step {step}: "
                                 "training diverged")

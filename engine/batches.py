"""Which examples each training step sees: an epoch's batches, and their grouping into compiled calls.

`Trainer.fit` asks `epoch_blocks` for an epoch's work: its batch order drawn by `epoch_batches` (a
permutation from (seed, epoch), so a resumed run recomputes it instead of storing it), from where
a resumed epoch starts, grouped into the [K, batch] blocks of `execution_blocks`, one per call of
the compiled K-step function, and cut where a checkpoint falls.
"""

import itertools
from typing import Iterator, Optional

import numpy as np


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches in an epoch, the last one maybe smaller: ceil(N / batch)."""
    return -(-num_examples // batch_size)


def epoch_blocks(num_examples: int, batch_size: int, seed: Optional[int], epoch: int, steps_per_execution: int,
                 cut_every: int = 0, steps_done: int = 0) -> Iterator[np.ndarray]:
    """The [K, batch] blocks of `epoch` (from 1) still to run, once `steps_done` of its steps are done.

    A block also ends on every global step (counted over all epochs) that is a multiple of
    `cut_every`, so a checkpoint every N steps falls between two compiled calls.
    """
    batches = itertools.islice(epoch_batches(num_examples, batch_size, seed, epoch), steps_done, None)
    global_step = (epoch - 1) * steps_per_epoch(num_examples, batch_size) + steps_done
    return execution_blocks(batches, steps_per_execution, cut_every, global_step)


def execution_blocks(batches: Iterator[np.ndarray], steps_per_execution: int,
                     cut_every: int = 0, steps_done: int = 0) -> Iterator[np.ndarray]:
    """Groups an epoch's batches into [K, batch] blocks, one per compiled call.

    Full batches go K at a time (the last block may hold fewer); a smaller last batch goes
    alone, since a block must be rectangular. So a compiled function sees at most three shapes.
    With `cut_every`, a block also ends where `steps_done` plus the steps so far is a multiple
    of it: a checkpoint every N steps then falls exactly between two compiled calls.
    """
    block: list = []
    for index in batches:
        if block and (len(index) != len(block[0]) or len(block) == steps_per_execution
                      or (cut_every and steps_done % cut_every == 0)):
            yield np.stack(block)
            block = []
        block.append(index)
        steps_done += 1
    if block:
        yield np.stack(block)


def epoch_batches(num_examples: int, batch_size: int, seed: Optional[int], epoch: int) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's batches; the last one is smaller when `batch_size` does not divide.

    With a seed, the order is a permutation drawn from (seed, epoch): a fresh shuffle every
    epoch, yet the same on every run — and recomputable when resuming at any epoch. Without
    a seed (None) the data are taken in order, which the Keras comparison uses.
    """
    order = np.arange(num_examples)
    if seed is not None:
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    for start in range(0, num_examples, batch_size):
        yield order[start:start + batch_size]

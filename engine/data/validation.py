"""Holding out part of the training set for validation, the way Keras's `validation_split` does.

Validating on the test set and then choosing by it (early stopping, a search) leaks the test
set into the model: its final score is then no longer an unbiased estimate. A validation split
is carved out of the training set instead, and the test set is read once, at the end.

Which examples: the last ones, by exactly Keras's rule —

    split_at = ceil(N * (1 - fraction))
    train = examples[:split_at], validation = examples[split_at:]

taken before any shuffling, so the split is the same on every run and for every seed. (The
split is not stratified: it relies on the data set's order being unrelated to the label, as
it is for MNIST and Fashion-MNIST.)
"""

import math
from typing import Tuple

import numpy as np

Split = Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def hold_out(images: np.ndarray, labels: np.ndarray, fraction: float) -> Split:
    """Returns ((train_images, train_labels), (validation_images, validation_labels)).

    Args:
      images, labels: the training set, paired along the first axis.
      fraction: the share held out for validation, in (0, 1).

    Raises:
      ValueError: `fraction` is outside (0, 1), or it leaves either part empty.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
    split_at = int(math.ceil(len(images) * (1 - fraction)))
    if split_at == 0 or split_at == len(images):
        raise ValueError(f"validation_split {fraction} of {len(images)} examples leaves an empty "
                         "training or validation set: choose a fraction that keeps both non-empty")
    return (images[:split_at], labels[:split_at]), (images[split_at:], labels[split_at:])

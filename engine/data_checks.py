"""What `Trainer.fit` and `evaluate` refuse before anything is traced: data that would fail deep inside
a compiled step, or train silently on nonsense.

Each refusal is one `DataError` (or a ValueError/TypeError for an argument) saying what was received
and what was expected. The labels are checked by the loss they feed (`LABELS`):

    sparse_categorical_crossentropy   class indices [N] (or [N, 1], squeezed as Keras's fit does),
                                      integers in [0, classes)
    categorical_crossentropy          one-hot (or soft) rows [N, classes]: non-negative, summing to 1
    mean_squared_error                float targets of the outputs' shape [N, ...] ([N] for outputs [N, 1])

A loss not listed gets only the checks every loss needs: as many labels as images, finite numbers.
The images are checked once to be finite: one NaN pixel would make every weight NaN within a step,
while the losses still print as numbers for a while.
"""

import functools
import numbers
from typing import Callable, Sequence

import numpy as np

from engine import losses
from engine.errors import DataError


def check_arguments(images, labels, batch_size) -> tuple:
    """The images and labels as NumPy arrays, paired one to one and non-empty, and `batch_size` an int >= 1.

    Raises:
      TypeError: for a batch size that is not an integer, or data that are not arrays (a tf.data.Dataset).
      ValueError: for a batch size below 1.
      DataError: for unpaired, empty or non-finite images.
    """
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
        raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for name, value in (("images", images), ("labels", labels)):
        if not isinstance(value, (np.ndarray, list, tuple)) and not hasattr(value, "__array__"):
            raise TypeError(f"{name} must be an array ({name} [N, ...] as NumPy or a tensor), got "
                            f"{type(value).__name__}: for a tf.data.Dataset, collect it into arrays first")
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise DataError(f"got {len(images)} images but {len(labels)} labels: they must pair up one to one")
    if len(images) == 0:
        raise DataError("the data set is empty: nothing to train or evaluate on")
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        where = "" if not np.issubdtype(images.dtype, np.number) else \
            f" (first at index {np.argwhere(~np.isfinite(images))[0].tolist()})"
        raise DataError(f"the images must be finite numbers, got dtype {images.dtype} with a NaN or Inf{where}: "
                        "one NaN pixel makes every weight NaN; clean or drop those images")
    return images, labels


def class_indices(labels, outputs: int) -> np.ndarray:
    """Labels as a vector [N] of class indices in [0, outputs); a column [N, 1] is squeezed, as Keras's fit does."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"sparse_categorical_crossentropy takes labels as class indices of shape (N,) or (N, 1), "
                        f"got shape {labels.shape}: one-hot rows need categorical_crossentropy")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= outputs))
    if bad.size:
        raise DataError(f"label {labels[bad[0]]} at index {bad[0]} is out of range: the model has {outputs} "
                        f"outputs, so labels must be in [0, {outputs})")
    return labels.astype(np.int32)


def distributions(labels, outputs: int) -> np.ndarray:
    """One-hot (or soft) label rows [N, outputs] as float32: non-negative, each summing to 1."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != outputs:
        raise DataError(f"categorical_crossentropy takes one-hot rows of shape (N, {outputs}) for a model with "
                        f"{outputs} outputs, got labels of shape {labels.shape}: class indices need "
                        "sparse_categorical_crossentropy")
    labels = _finite_floats(labels)
    sums = labels.sum(axis=1)
    bad = np.flatnonzero((labels < 0).any(axis=1) | (np.abs(sums - 1) > 1e-3))
    if bad.size:
        row = ", ".join(f"{value:g}" for value in labels[bad[0]][:12])
        raise DataError(f"label row {bad[0]} is [{row}{', ...' if outputs > 12 else ''}] (sum {sums[bad[0]]:g}): a "
                        "one-hot (or soft) row must be non-negative and sum to 1")
    return labels


def targets(labels, output_shape: Sequence[int]) -> np.ndarray:
    """Float32 regression targets of the outputs' shape [N, ...] (targets [N] for outputs [N, 1], as Keras pairs)."""
    labels = _finite_floats(np.asarray(labels))
    if labels.shape[1:] != tuple(output_shape) and not (labels.ndim == 1 and tuple(output_shape) == (1,)):
        raise DataError(f"mean_squared_error takes targets of the outputs' shape (N, {', '.join(map(str, output_shape))}), "
                        f"got targets of shape {labels.shape}")
    return labels


def _finite_floats(labels: np.ndarray) -> np.ndarray:
    if not np.issubdtype(labels.dtype, np.number) or not np.isfinite(labels).all():
        raise DataError(f"the labels must be finite numbers, got dtype {labels.dtype} with a NaN or Inf")
    return labels.astype(np.float32)


LABELS = {losses.sparse_categorical_crossentropy: lambda labels, shape: class_indices(labels, shape[-1]),
          losses.categorical_crossentropy: lambda labels, shape: distributions(labels, shape[-1]),
          losses.mean_squared_error: targets}


def checked_labels(loss_fn: Callable, labels, output_shape: Sequence[int]) -> np.ndarray:
    """`labels` as the loss takes them (class indices int32, else float32), checked for a model whose outputs
    have `output_shape` (one example's, without the batch axis). A partial of a listed loss is that loss."""
    check = LABELS.get(loss_fn.func if isinstance(loss_fn, functools.partial) else loss_fn)
    if check is not None:
        return check(labels, tuple(output_shape))
    labels = np.asarray(labels)
    return labels.astype(np.int32) if np.issubdtype(labels.dtype, np.integer) else _finite_floats(labels)

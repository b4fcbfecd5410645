"""Weights compared and copied position by position: the rulers of the Keras comparison.

`engine/compare/parity.py` starts both sides from the same weights (`copy_variables`) and measures how
far they drift apart (`max_abs_diff`, `max_rel_diff`, `weights_diff`); `engine/compare/keras_twin.py`
copies an engine model into its Keras twin layer by layer with the same function.
"""

from typing import Sequence

import numpy as np
import tensorflow as tf


def copy_variables(source: Sequence[tf.Variable], target: Sequence[tf.Variable]) -> None:
    """Assigns each source variable to the target variable in the same position."""
    for s, t in zip(source, target, strict=True):
        if s.shape != t.shape:
            raise ValueError(f"cannot copy weights: {s.name} has shape {s.shape}, {t.name} has {t.shape}")
        t.assign(s)


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def max_rel_diff(a, b) -> float:
    """max |a - b| / max |b|: the difference relative to the tensor's scale (elements near 0
    would make an element-wise ratio meaningless)."""
    return max_abs_diff(a, b) / max(float(np.max(np.abs(b))), 1e-30)


def weights_diff(ours: Sequence[tf.Variable], theirs: Sequence[tf.Variable]) -> float:
    return max(max_abs_diff(a.numpy(), b.numpy()) for a, b in zip(ours, theirs))

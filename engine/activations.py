"""Activation functions, written out from elementary ops.

Each function maps a tensor of pre-activations `z` (any shape; the class axis is the last
one) to a tensor of the same shape. They are the functions `keras.activations` provides
under the same names, and `tests/test_activations.py` checks them against both NumPy and
Keras. Keras's `relu(x, negative_slope, max_value, threshold)` options are left out on
purpose: each makes another activation (leaky, capped), which the engine's models never use.
"""

from typing import Callable, Union

import tensorflow as tf

Activation = Callable[[tf.Tensor], tf.Tensor]


def linear(z: tf.Tensor) -> tf.Tensor:
    """Identity: `f(z) = z`. The activation of a layer that outputs logits."""
    return z


def relu(z: tf.Tensor) -> tf.Tensor:
    """Rectified linear unit: `f(z) = max(z, 0)`.

    Its derivative is 1 where z > 0 and 0 elsewhere, so gradients pass unchanged through
    active units. Written with `tf.where` rather than `tf.maximum(z, 0)` because the
    gradient of `tf.maximum` at a tie goes to the first argument, which would make the
    derivative 1 at z == 0; `tf.nn.relu` (and so Keras) uses 0 there.
    """
    return tf.where(z > 0, z, tf.zeros_like(z))


def softmax(z: tf.Tensor, axis=-1) -> tf.Tensor:
    """Softmax over `axis` (the last by default; an int or a tuple, as in Keras): `p_i = exp(z_i) / sum_j exp(z_j)`.

    Stability trick: softmax is unchanged by subtracting a constant from every z_i, so we
    subtract the row maximum first. Then the largest exponent is exp(0) = 1: nothing
    overflows (exp(89) is already inf in float32), and the sum is at least 1, so the
    division is safe.

    Example:
        >>> softmax(tf.constant([[1000.0, 0.0]])).numpy()   # no overflow
        array([[1., 0.]], dtype=float32)
    """
    shifted = z - tf.reduce_max(z, axis=axis, keepdims=True)  # [..., classes], max is 0
    exponentials = tf.exp(shifted)
    probabilities = exponentials / tf.reduce_sum(exponentials, axis=axis, keepdims=True)
    # Keep the logits with the probabilities, as keras.activations.softmax does: a cross-entropy
    # given these probabilities then computes from the logits — exact, and with a gradient that
    # never vanishes (see engine/losses.py). Only for the last axis, unlike Keras, on purpose:
    # the cross-entropies normalise over the last axis, so other logits would give a wrong loss.
    if axis == -1:
        remember_logits(probabilities, z)
    return probabilities


def remember_logits(probabilities: tf.Tensor, logits: tf.Tensor) -> None:
    """Records on a softmax output the logits it came from (read back by `logits_of`).

    The attribute is Keras 3's own, `_keras_logits`, so either library's cross-entropy finds
    the logits behind either library's softmax.
    """
    try:
        probabilities._keras_logits = logits
    except AttributeError:  # a C-level tensor type that takes no attributes: the loss clips
        pass


def logits_of(probabilities: tf.Tensor):
    """The logits `softmax` recorded on `probabilities`, or None for any other tensor."""
    return getattr(probabilities, "_keras_logits", None)


def log_softmax(z: tf.Tensor, axis=-1) -> tf.Tensor:
    """Log of the softmax over `axis` (as `softmax`): `log p_i = z_i - log sum_j exp(z_j)`.

    Computed with the log-sum-exp trick, `log sum_j exp(z_j) = m + log sum_j exp(z_j - m)`
    with `m = max_j z_j`, rather than as `log(softmax(z))`: the latter rounds tiny
    probabilities to 0 and returns -inf, while this form stays finite whenever the
    row's spread max(z) - z_i is itself a finite float32.
    """
    row_max = tf.reduce_max(z, axis=axis, keepdims=True)
    shifted = z - row_max  # [..., classes]
    log_sum_exp = tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=axis, keepdims=True))
    return shifted - log_sum_exp


_BY_NAME = {"linear": linear, "relu": relu, "softmax": softmax, "log_softmax": log_softmax}


def get(identifier: Union[None, str, Activation]) -> Activation:
    """Resolves a layer's `activation=` argument to a function.

    Args:
      identifier: None (meaning linear, as in Keras), one of "linear", "relu", "softmax",
        "log_softmax", or any callable from tensor to tensor.

    Returns:
      The activation function.

    Raises:
      ValueError: for an unknown name or a non-callable.
    """
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(
        f"Unknown activation {identifier!r}: expected None, one of "
        f"{sorted(_BY_NAME)}, or a callable from engine.activations"
    )

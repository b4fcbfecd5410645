"""Weight initializers: plain callables `(shape, dtype, seed) -> Tensor`.

The seed makes a model's starting point reproducible: the same seed gives the same
weights on every run and every machine, because the stateless random ops used here are
pure functions of (shape, seed).
"""

import math
from typing import Callable, Sequence, Union

import tensorflow as tf

Initializer = Callable[[Sequence[int], tf.DType, int], tf.Tensor]


def glorot_uniform(shape: Sequence[int], dtype: tf.DType = tf.float32, seed: int = 0) -> tf.Tensor:
    """Glorot (Xavier) uniform: samples from U(-limit, limit), `limit = sqrt(6 / (fan_in + fan_out))`.

    Why this limit: U(-a, a) has variance a^2 / 3, so the variance is 2 / (fan_in + fan_out),
    the compromise between keeping activations' variance constant going forward (1 / fan_in)
    and gradients' variance constant going backward (1 / fan_out) (Glorot & Bengio, 2010).
    For a Dense kernel of shape (in, units), fan_in = in and fan_out = units.

    Args:
      shape: at least 2-D; the last two dimensions are (fan_in, fan_out) and any leading
        dimensions multiply both (the convolution convention Keras uses).
      dtype: floating dtype of the result.
      seed: integer seed; the same seed gives the same tensor.
    """
    if len(shape) < 2:
        raise ValueError(f"glorot_uniform needs a shape of rank >= 2, got {tuple(shape)}")
    receptive_field = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tf.random.stateless_uniform(
        shape, seed=[seed, 0], minval=-limit, maxval=limit, dtype=dtype
    )


def zeros(shape: Sequence[int], dtype: tf.DType = tf.float32, seed: int = 0) -> tf.Tensor:
    """All zeros: the usual bias start, so a unit's output is initially its weighted sum alone.

    `seed` is accepted and unused so every initializer has the same signature.
    """
    del seed
    return tf.zeros(shape, dtype=dtype)


def ones(shape: Sequence[int], dtype: tf.DType = tf.float32, seed: int = 0) -> tf.Tensor:
    """All ones (Keras's "ones", say for a bias that starts every unit active). `seed` is unused."""
    del seed
    return tf.ones(shape, dtype=dtype)


_BY_NAME = {"glorot_uniform": glorot_uniform, "ones": ones, "zeros": zeros}


def get(identifier: Union[str, Initializer]) -> Initializer:
    """Resolves a layer's `kernel_initializer=` / `bias_initializer=` argument.

    Raises:
      ValueError: for an unknown name or a non-callable.
    """
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(
        f"Unknown initializer {identifier!r}: expected one of {sorted(_BY_NAME)} "
        "or a callable (shape, dtype, seed) -> Tensor"
    )

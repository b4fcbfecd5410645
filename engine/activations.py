"""Activation functions, written out from elementary ops, each with its derivative beside it.

Each function maps a tensor of pre-activations `z` (any shape; the class axis is the last
one) to a tensor `y` of the same shape. They are the functions `keras.activations` provides
under the same names, and `tests/test_activations.py` checks them against both NumPy and
Keras. Keras's `relu(x, negative_slope, max_value, threshold)` options are left out on
purpose: each makes another activation (leaky, capped), which the engine's models never use.
One runs on TensorFlow's own kernel, for speed: `relu` is `tf.nn.relu`, which graph mode folds
into the matmul before it; its formula stands beside it as `relu_formula`, and the tests hold
the two equal bit for bit, forward and backward.

The backward rules. Beside each activation `f` stands `f_backward(outputs, upstream)`: given
what the forward pass gave, `y = f(z)`, and the gradient of the loss with respect to it,
`dL/dy` (upstream), it returns `dL/dz`. Every rule here needs only `y`, not `z` (as
micrograd's tanh keeps its output t): relu's mask is `y > 0`, softmax's Jacobian is made of
`y` itself. So a layer keeps its outputs from the forward pass, and nothing else, for its
activation. `backward(f)` finds the rule of `f`; `BACKWARD` lists them.
"""

from typing import Callable, Dict, Optional, Union

import tensorflow as tf

Activation = Callable[[tf.Tensor], tf.Tensor]
BackwardRule = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def linear(z: tf.Tensor) -> tf.Tensor:
    """Identity: `f(z) = z`. The activation of a layer that outputs logits."""
    return z


def linear_backward(outputs: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """`dy/dz = 1`: the gradient passes unchanged."""
    return upstream


def relu(z: tf.Tensor) -> tf.Tensor:
    """Rectified linear unit: `f(z) = max(z, 0)`, computed by TensorFlow's kernel for it.

    The formula is `relu_formula`, below, written out; `tf.nn.relu` gives the same numbers and the
    same gradient, 0 at z == 0 included (tests/test_activations.py pins the two together). It is
    here for speed in graph mode: TensorFlow's graph optimizer folds `relu(x @ W + b)` into the
    matmul's own kernel (oneDNN's fused MatMul, the activation applied as each output tile is
    written) and differentiates it in one op (`ReluGrad`), where the `tf.where` form costs three
    more passes over the [batch, units] activations each way (Greater, ZerosLike, SelectV2).
    Measured on the 2-core Intel Xeon with AMX (`python -m bench.graph_step`), the graph step ran
    1.07x faster for it in float32 and 1.15x in bfloat16 at batch 1024; under XLA, which fuses
    element-wise ops itself, the two compute alike.
    """
    return tf.nn.relu(z)


def relu_formula(z: tf.Tensor) -> tf.Tensor:
    """`max(z, 0)` from elementary ops: the reference `relu` is tested against.

    Written with `tf.where` rather than `tf.maximum(z, 0)` because the gradient of
    `tf.maximum` at a tie goes to the first argument, which would make the derivative 1 at
    z == 0; `tf.nn.relu` (and so Keras) uses 0 there.
    """
    return tf.where(z > 0, z, tf.zeros_like(z))


def relu_backward(outputs: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """`dy/dz = [z > 0]`, the mask: the gradient passes through active units and stops at the others.

    `y > 0` exactly where `z > 0` (y is z there, 0 elsewhere), so the output is all the rule needs;
    at z == 0 the derivative is 0, as `tf.nn.relu`'s.
    """
    return tf.where(outputs > 0, upstream, tf.zeros_like(upstream))


def softmax(z: tf.Tensor, axis=-1) -> tf.Tensor:
    """Softmax over `axis` (the last by default; an int or a tuple, as in Keras): `p_i = exp(z_i) / sum_j exp(z_j)`.

    Stability trick: softmax is unchanged by subtracting a constant from every z_i, so we
    subtract the row maximum first. Then the largest exponent is exp(0) = 1: nothing
    overflows (exp(89) is already inf in float32), and the sum is at least 1, so the
    division is safe.

    A softmax followed by a cross-entropy is never computed through these probabilities in
    training: the step computes the loss from the logits (`losses.output_loss` says why).

    Example:
        >>> softmax(tf.constant([[1000.0, 0.0]])).numpy()   # no overflow
        array([[1., 0.]], dtype=float32)
    """
    shifted = z - tf.reduce_max(z, axis=axis, keepdims=True)  # [..., classes], max is 0
    exponentials = tf.exp(shifted)
    return exponentials / tf.reduce_sum(exponentials, axis=axis, keepdims=True)


def softmax_backward(outputs: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """Softmax's Jacobian `dp_i/dz_j = p_i ([i == j] - p_j)`, applied to the upstream gradient g:

        dL/dz_j = sum_i g_i p_i ([i == j] - p_j) = p_j (g_j - sum_i g_i p_i)

    one row at a time, over the last axis, without building the [classes, classes] matrix.
    """
    return outputs * (upstream - tf.reduce_sum(upstream * outputs, axis=-1, keepdims=True))


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


def log_softmax_backward(outputs: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """`d log p_i / dz_j = [i == j] - p_j`, so `dL/dz_j = g_j - p_j sum_i g_i`, with `p = exp(outputs)`."""
    return upstream - tf.exp(outputs) * tf.reduce_sum(upstream, axis=-1, keepdims=True)


_BY_NAME = {"linear": linear, "relu": relu, "softmax": softmax, "log_softmax": log_softmax}
BACKWARD: Dict[Activation, BackwardRule] = {linear: linear_backward, relu: relu_backward, relu_formula: relu_backward,
                                            softmax: softmax_backward, log_softmax: log_softmax_backward}


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


def backward(activation: Activation) -> Optional[BackwardRule]:
    """The backward rule of `activation` (`BACKWARD[activation]`), or None for one without a rule,
    such as a user's own function: manual gradients then refuse the model (`engine.gradients`)."""
    return BACKWARD.get(activation)

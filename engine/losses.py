"""Loss functions: how wrong a batch of predictions is, as one scalar to differentiate.

Every loss here returns the MEAN over the batch of a per-example loss, which is what Keras
calls the "sum_over_batch_size" reduction. The mean (not the sum) keeps the gradient's
scale independent of the batch size, so one learning rate works for batch 32 and 1024.

Probabilities vs. logits. A classifier's last layer can output probabilities (softmax
applied) or logits (the raw scores before it). From logits, cross-entropy is computed as
`-log_softmax(z)[y]`, which is exact for any finite z. From probabilities we must take
`log(p)`, and `log(0) = -inf`; so, like Keras, probabilities are clipped to
[EPSILON, 1 - EPSILON] first. The clip bounds each example's loss at -log(1e-7) = 16.12 and
zeroes its gradient once the true class' probability is below 1e-7.

What Keras 3 does differently, and why we do not copy it: `keras.activations.softmax`
attaches its input to its output (`output._keras_logits`), and Keras's cross-entropy, when
it finds that attribute (or, in a graph, a `Softmax` op feeding it), silently switches to
the logits. So a Keras model ending in Dense(softmax) never clips. We keep the math
visible instead: `sparse_categorical_crossentropy(y, p)` is always the clipped formula,
identical to Keras's on a plain probability tensor, and a user who wants the exact
log-softmax path ends the model in a linear layer and passes `from_logits=True`. The two
agree to float32 rounding until a probability falls below 1e-7.
"""

import tensorflow as tf

from engine import activations

EPSILON = 1e-7  # keras.backend.epsilon()


def sparse_categorical_crossentropy(
    y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """Cross-entropy with integer labels: `mean_i -log p[i, y_i]`.

    Args:
      y_true: int labels, shape [batch], values in [0, classes).
      y_pred: probabilities (or logits if `from_logits`), shape [batch, classes].
      from_logits: whether `y_pred` are logits.

    Returns:
      Scalar float tensor: the mean loss over the batch.

    Example:
      >>> sparse_categorical_crossentropy([0], [[0.5, 0.5]]).numpy()   # -log(0.5)
      0.6931472
    """
    y_pred = tf.convert_to_tensor(y_pred)
    log_probs = _log_probabilities(y_pred, from_logits)  # [batch, classes]
    if not from_logits:
        # Keras treats the clipped log-probabilities as logits, which renormalises them:
        # log p_i - log sum_j p_j. The clip moves the sum off 1 by up to classes * 1e-7.
        log_probs = activations.log_softmax(log_probs)
    # Pick log p[i, y_i] for each row i.
    picked = tf.gather(log_probs, tf.cast(y_true, tf.int32), axis=-1, batch_dims=1)  # [batch]
    return -tf.reduce_mean(picked)


def categorical_crossentropy(
    y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """Cross-entropy with one-hot (or soft) labels: `mean_i -sum_c y[i, c] log p[i, c]`.

    From probabilities, each row is first renormalised to sum to 1 (as Keras does, so an
    output that is only roughly normalised is still a distribution), then clipped.

    Args:
      y_true: target distribution, shape [batch, classes].
      y_pred: probabilities (or logits if `from_logits`), shape [batch, classes].
      from_logits: whether `y_pred` are logits.
    """
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.cast(y_true, y_pred.dtype)
    if not from_logits:
        y_pred = y_pred / tf.reduce_sum(y_pred, axis=-1, keepdims=True)
    log_probs = _log_probabilities(y_pred, from_logits)  # [batch, classes]
    return -tf.reduce_mean(tf.reduce_sum(y_true * log_probs, axis=-1))


def mean_squared_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean squared error: `mean_i mean_k (y[i, k] - y_hat[i, k])^2`.

    Averaged over the last axis per example first, then over the batch — Keras's order,
    which equals the plain mean over all elements when every example has the same size.
    """
    y_pred = tf.convert_to_tensor(y_pred)
    error = tf.cast(y_true, y_pred.dtype) - y_pred
    return tf.reduce_mean(tf.reduce_mean(tf.square(error), axis=-1))


def _log_probabilities(y_pred: tf.Tensor, from_logits: bool) -> tf.Tensor:
    """`log p` from logits (exact log-softmax) or from probabilities (clipped log)."""
    if from_logits:
        return activations.log_softmax(y_pred)
    return tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON))

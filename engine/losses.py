"""Loss functions: how wrong a batch of predictions is, as one scalar to differentiate.

Every loss here returns the MEAN over the batch of a per-example loss, computed as Keras's
"sum_over_batch_size" reduction does: the sum divided by the batch size. The mean (not the
sum) keeps the gradient's scale independent of the batch size, so one learning rate works
for batch 32 and batch 1024.

Probabilities vs. logits. A classifier's last layer outputs probabilities (softmax
applied) or logits z (the scores before it). From logits, cross-entropy is exact for any
finite z:

    loss_i = log sum_j exp(z_ij) - z_i,y        (log-sum-exp, computed after subtracting max_j z_ij)
    dloss_i / dz_ij = softmax(z_i)_j - [j == y]  (probability minus target)

and that derivative is written next to the forward formula (`_cross_entropy_from_logits`)
rather than left to the tape: the tape would differentiate the log, exp and division one by
one, and both the rounding and the op count would differ from the textbook p - y.

From probabilities we must take log(p), and log(0) = -inf; so, like Keras, probabilities are
clipped to [EPSILON, 1 - EPSILON] first, which bounds each example's loss at -log(1e-7) =
16.12 but also zeroes its gradient once the true class' probability is below 1e-7.

What Keras 3 does, and so do we: its softmax output carries the logits it came from
(`_keras_logits`), and its cross-entropy, given such an output, uses the logits instead of
clipping. A Keras model ending in Dense(softmax) thus never clips. `engine.activations.softmax`
records its logits the same way (`remember_logits`), and the cross-entropies below take them
when present. A plain probability tensor (say, read from a file) is clipped, in both libraries.

Shapes and dtypes as in Keras's loss classes: float32 results; labels may carry a trailing
axis of 1 (`_matched`); other mismatches raise a ValueError naming both shapes. Keras's
`sample_weight`, `reduction`, `label_smoothing`, `ignore_class` and `axis` are left out on
purpose: the training step never uses them, and each would branch the math read here.
"""

import tensorflow as tf

from engine import activations

EPSILON = 1e-7  # keras.backend.epsilon()


def sparse_categorical_crossentropy(
    y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """Cross-entropy with integer labels: `mean_i -log p[i, y_i]`.

    Args:
      y_true: int labels, shape [batch, ...] (or [batch, ..., 1]), values in [0, classes).
      y_pred: probabilities (or logits if `from_logits`), shape [batch, ..., classes]: one
        distribution per example, or per pixel for segmentation (the mean is then over pixels).
      from_logits: whether `y_pred` are logits.

    Returns:
      Scalar float tensor: the mean loss over the batch.

    Example:
      >>> sparse_categorical_crossentropy([0], tf.constant([[0.5, 0.5]])).numpy()   # -log(0.5)
      0.6931472
    """
    y_pred = _float32(y_pred)
    labels = _sparse_labels(y_true, y_pred)  # [batch, ...]
    logits = y_pred if from_logits else activations.logits_of(y_pred)
    if logits is not None:
        targets = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)  # [batch, ..., classes]
        return _mean(_cross_entropy_from_logits(logits, targets))
    # Keras treats the clipped log-probabilities as logits, which renormalises them:
    # log p_i - log sum_j p_j. The clip moves the sum off 1 by up to classes * 1e-7.
    log_probs = activations.log_softmax(_clipped_log(y_pred))  # [batch, ..., classes]
    # Pick log p[i, y_i] for each row i.
    return _mean(-tf.gather(log_probs, labels, axis=-1, batch_dims=labels.shape.rank))


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

    Raises ValueError when `y_true` and `y_pred` differ in shape, as Keras does.
    """
    y_pred = _float32(y_pred)
    targets, y_pred = _matched(y_true, y_pred, "categorical_crossentropy")
    logits = y_pred if from_logits else activations.logits_of(y_pred)
    if logits is not None:
        return _mean(_cross_entropy_from_logits(logits, targets))
    y_pred = y_pred / tf.reduce_sum(y_pred, axis=-1, keepdims=True)
    return _mean(-tf.reduce_sum(targets * _clipped_log(y_pred), axis=-1))


def mean_squared_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean squared error: `mean_i mean_k (y[i, k] - y_hat[i, k])^2`.

    Averaged over the last axis per example first, then over the batch — Keras's order,
    which equals the plain mean over all elements when every example has the same size.
    Targets [batch] against predictions [batch, 1] (or the reverse) are paired row by row;
    any other mismatch raises a ValueError naming both shapes, on purpose where Keras lets
    TensorFlow's broadcasting error (InvalidArgumentError) through.
    """
    y_true, y_pred = _matched(y_true, _float32(y_pred), "mean_squared_error")
    error = y_true - y_pred
    return _mean(tf.reduce_mean(tf.square(error), axis=-1))


@tf.custom_gradient
def _cross_entropy_from_logits(logits: tf.Tensor, targets: tf.Tensor):
    """Per-example `-sum_j t_j log softmax(z)_j = sum_j t_j (log sum_k exp(z_k) - z_j)`,
    with its derivative `softmax(z) - t` (for targets that sum to 1).

    `multiply_no_nan` makes a zero target contribute exactly 0 even where z_j = -inf, so a
    one-hot row gives exactly `log sum_k exp(z_k) - z_y`.
    """
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)  # [batch, classes], max 0
    exponentials = tf.exp(shifted)
    sum_exp = tf.reduce_sum(exponentials, axis=-1, keepdims=True)  # [batch, 1], >= 1
    per_example = tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(sum_exp) - shifted, targets), axis=-1)

    def gradient(upstream):  # upstream: dL/dloss_i, [batch, ...]
        probabilities = exponentials / sum_exp
        return upstream[..., None] * (probabilities - targets), None

    return per_example, gradient


def _sparse_labels(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Integer labels of shape `y_pred.shape[:-1]` (a trailing axis of 1 dropped), else ValueError."""
    labels = tf.cast(y_true, tf.int32)
    if labels.shape.rank == y_pred.shape.rank and labels.shape[-1] == 1:
        labels = tf.squeeze(labels, axis=-1)  # [batch, ..., 1] -> [batch, ...]
    if y_pred.shape.rank == 0 or not labels.shape.is_compatible_with(y_pred.shape[:-1]):
        raise ValueError(f"sparse_categorical_crossentropy expected labels of shape {y_pred.shape[:-1]} "
                         f"for predictions of shape {y_pred.shape}, got labels of shape {labels.shape}")
    return labels


def _matched(y_true: tf.Tensor, y_pred: tf.Tensor, loss: str):
    """`y_true` as float32 and `y_pred`, at one shape by Keras's rule: when their ranks differ by one
    and the longer ends in 1, a rank-1 shorter one gains that axis, else the longer loses it."""
    y_true = tf.cast(y_true, y_pred.dtype)
    true_rank, pred_rank = y_true.shape.rank, y_pred.shape.rank
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true, y_pred = (y_true, y_pred[..., None]) if pred_rank == 1 else (tf.squeeze(y_true, -1), y_pred)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        y_true, y_pred = (y_true[..., None], y_pred) if true_rank == 1 else (y_true, tf.squeeze(y_pred, -1))
    if not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(f"{loss} expected y_true of the shape of y_pred {y_pred.shape}, got {y_true.shape}")
    return y_true, y_pred


def _float32(y_pred) -> tf.Tensor:
    y_pred = tf.convert_to_tensor(y_pred)  # as Keras's losses: a float16 loss would lose its digits
    return y_pred if y_pred.dtype == tf.float32 else tf.cast(y_pred, tf.float32)


def _clipped_log(probabilities: tf.Tensor) -> tf.Tensor:
    return tf.math.log(tf.clip_by_value(probabilities, EPSILON, 1.0 - EPSILON))


def _mean(per_example: tf.Tensor) -> tf.Tensor:
    """Keras's sum_over_batch_size: the sum, divided by the number of examples."""
    return tf.reduce_sum(per_example) / tf.cast(tf.size(per_example), per_example.dtype)

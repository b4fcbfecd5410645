"""Loss functions: how wrong a batch of predictions is, as one scalar to differentiate.

Every loss here returns the MEAN over the batch of a per-example loss, computed as Keras's
"sum_over_batch_size" reduction does: the sum divided by the batch size. The mean (not the
sum) keeps the gradient's scale independent of the batch size, so one learning rate works
for batch 32 and batch 1024. Beside each loss stands its backward rule, `*_backward(y_true,
y_pred)`: the gradient of that mean with respect to `y_pred`, written out.

Probabilities vs. logits. A classifier's last layer outputs probabilities (softmax
applied) or logits z (the scores before it). From logits, cross-entropy is exact for any
finite z:

    loss_i = log sum_j exp(z_ij) - z_i,y        (log-sum-exp, computed after subtracting max_j z_ij)
    dloss_i / dz_ij = softmax(z_i)_j - [j == y]  (probability minus target)

From probabilities we must take log(p), and log(0) = -inf; so, like Keras, probabilities are
clipped to [EPSILON, 1 - EPSILON] first, which bounds each example's loss at -log(1e-7) =
16.12 but also zeroes its gradient once the true class' probability is below 1e-7.

So a model whose output layer is a softmax is trained on the cross-entropy of its logits:
the step asks the model for its logits and its output activation and calls `output_loss`,
which takes the logits route for softmax + cross-entropy (as Keras does for such a model) and
otherwise scores `activation(logits)` as given. A tensor of probabilities passed to a
cross-entropy directly (say, read from a file) is what it is: clipped, in both libraries.

Shapes and dtypes as in Keras's loss functions: float16 and bfloat16 predictions are scored in
float32 (a half-precision loss would lose its digits), float32 and float64 in their own dtype;
labels may carry a trailing axis of 1 (`_matched`); other mismatches raise a ValueError naming
both shapes. Keras's `sample_weight`, `reduction`, `label_smoothing`, `ignore_class` and `axis`
are left out on purpose: the training step never uses them, and each would branch the math.
"""

import functools
from typing import Callable, Optional

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
    y_pred = _scored_dtype(y_pred)
    labels = _sparse_labels(y_true, y_pred)  # [batch, ...]
    if from_logits:
        return _mean(_cross_entropy_from_logits(y_pred, tf.one_hot(labels, tf.shape(y_pred)[-1], dtype=y_pred.dtype)))
    # Keras treats the clipped log-probabilities as logits, which renormalises them:
    # log p_i - log sum_j p_j. The clip moves the sum off 1 by up to classes * 1e-7.
    log_probs = activations.log_softmax(_clipped_log(y_pred))  # [batch, ..., classes]
    # Pick log p[i, y_i] for each row i.
    return _mean(-tf.gather(log_probs, labels, axis=-1, batch_dims=labels.shape.rank))


def sparse_categorical_crossentropy_backward(
    y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """dL/dy_pred of `sparse_categorical_crossentropy`, for n = the number of examples (or pixels):

        from logits:         (softmax(z) - onehot(y)) / n
        from probabilities:  q = log(clip(p)), loss = logsumexp(q) - q_y, so
                             dL/dp = (softmax(q) - onehot(y)) / p / n where the clip let p through, else 0
    """
    y_pred = _scored_dtype(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    targets = tf.one_hot(labels, tf.shape(y_pred)[-1], dtype=y_pred.dtype)  # [batch, ..., classes]
    count = tf.cast(tf.size(labels), y_pred.dtype)
    if from_logits:
        return (activations.softmax(y_pred) - targets) / count
    return _through_clip(y_pred, activations.softmax(_clipped_log(y_pred)) - targets) / count


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
    targets, y_pred = _matched(y_true, _scored_dtype(y_pred), "categorical_crossentropy")
    if from_logits:
        return _mean(_cross_entropy_from_logits(y_pred, targets))
    y_pred = y_pred / tf.reduce_sum(y_pred, axis=-1, keepdims=True)
    return _mean(-tf.reduce_sum(targets * _clipped_log(y_pred), axis=-1))


def categorical_crossentropy_backward(
    y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """dL/dy_pred of `categorical_crossentropy`, for n examples and targets t:

        from logits:         (softmax(z) * sum_c t_c - t) / n          (softmax(z) - t when rows sum to 1)
        from probabilities:  with S = sum_c p_c, r = p / S and g_c = -t_c / r_c where the clip let r_c through,
                             dL/dp_k = (g_k - sum_c g_c r_c) / S / n   (the chain rule through the renormalisation)
    """
    targets, y_pred = _matched(y_true, _scored_dtype(y_pred), "categorical_crossentropy")
    count = tf.cast(tf.shape(y_pred)[0], y_pred.dtype)
    if from_logits:
        return (activations.softmax(y_pred) * tf.reduce_sum(targets, -1, keepdims=True) - targets) / count
    total = tf.reduce_sum(y_pred, axis=-1, keepdims=True)  # [batch, 1]
    normalised = y_pred / total
    d_normalised = _through_clip(normalised, -targets)  # -t / r inside the clip, 0 outside
    return (d_normalised - tf.reduce_sum(d_normalised * normalised, -1, keepdims=True)) / total / count


def mean_squared_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean squared error: `mean_i mean_k (y[i, k] - y_hat[i, k])^2`.

    Averaged over the last axis per example first, then over the batch — Keras's order,
    which equals the plain mean over all elements when every example has the same size.
    Targets [batch] against predictions [batch, 1] (or the reverse) are paired row by row;
    any other mismatch raises a ValueError naming both shapes, on purpose where Keras lets
    TensorFlow's broadcasting error (InvalidArgumentError) through.
    """
    y_true, y_pred = _matched(y_true, _scored_dtype(y_pred), "mean_squared_error")
    error = y_true - y_pred
    return _mean(tf.reduce_mean(tf.square(error), axis=-1))


def mean_squared_error_backward(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """dL/dy_hat = 2 (y_hat - y) / (n k), for n examples of k values each; in `y_pred`'s own shape."""
    shape = tf.shape(y_pred)
    y_true, matched = _matched(y_true, _scored_dtype(y_pred), "mean_squared_error")
    gradient = 2.0 * (matched - y_true) / tf.cast(tf.size(matched), matched.dtype)
    return tf.reshape(gradient, shape)


BACKWARD = {sparse_categorical_crossentropy: sparse_categorical_crossentropy_backward,
            categorical_crossentropy: categorical_crossentropy_backward,
            mean_squared_error: mean_squared_error_backward}


def backward(loss_fn: Callable) -> Optional[Callable]:
    """The backward rule of `loss_fn`; a `functools.partial` of a listed loss (say with `from_logits=True`)
    gets that loss's rule with the same keywords. None for a loss without a rule (a user's own)."""
    if isinstance(loss_fn, functools.partial) and not loss_fn.args and loss_fn.func in BACKWARD:
        return functools.partial(BACKWARD[loss_fn.func], **loss_fn.keywords)
    return BACKWARD.get(loss_fn)


def output_loss(loss_fn: Callable, y_true: tf.Tensor, logits: tf.Tensor, activation: Callable) -> tf.Tensor:
    """The loss of a model's outputs `activation(logits)`: what the training step differentiates.

    A softmax followed by a cross-entropy is computed from the logits, as Keras does for a model
    ending in Dense(softmax): the loss is exact for any logits (no clip: a true class at
    p = 6e-16 costs its real 35, not the clip's 16.12), and its gradient, softmax(z) - onehot,
    never vanishes, however wrong and confident the model is. Any other pair scores the outputs.
    """
    if _softmax_cross_entropy(loss_fn, activation):
        return loss_fn(y_true, logits, from_logits=True)
    return loss_fn(y_true, activation(logits))


def output_loss_backward(loss_fn: Callable, y_true: tf.Tensor, logits: tf.Tensor, activation: Callable) -> tf.Tensor:
    """dL/dlogits of `output_loss`: the softmax + cross-entropy rule `(softmax(z) - onehot) / n` at once,
    else the loss's rule at the outputs, then the activation's (the chain rule: dL/dz = dL/dy * dy/dz)."""
    if _softmax_cross_entropy(loss_fn, activation):
        return BACKWARD[loss_fn](y_true, logits, from_logits=True)
    outputs = activation(logits)
    return activations.backward(activation)(outputs, backward(loss_fn)(y_true, outputs))


def _softmax_cross_entropy(loss_fn: Callable, activation: Callable) -> bool:
    return activation is activations.softmax and loss_fn in (sparse_categorical_crossentropy, categorical_crossentropy)


def _cross_entropy_from_logits(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Per-example `-sum_j t_j log softmax(z)_j = sum_j t_j (log sum_k exp(z_k - m) - (z_j - m))`, m = max_j z_j.

    The shift m changes nothing (it cancels), so it is a constant to the derivative
    (`tf.stop_gradient`): the tape then differentiates exactly the unshifted formula.
    `multiply_no_nan` makes a zero target contribute exactly 0 even where z_j = -inf, so a
    one-hot row gives exactly `log sum_k exp(z_k) - z_y`.
    """
    shifted = logits - tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True))  # [batch, classes], max 0
    log_sum_exp = tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))  # [batch, 1], >= 0
    return tf.reduce_sum(tf.math.multiply_no_nan(log_sum_exp - shifted, targets), axis=-1)


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
    """`y_true` in `y_pred`'s dtype and `y_pred`, at one shape by Keras's rule: when their ranks differ by
    one and the longer ends in 1, a rank-1 shorter one gains that axis, else the longer loses it."""
    y_true = tf.cast(y_true, y_pred.dtype)
    true_rank, pred_rank = y_true.shape.rank, y_pred.shape.rank
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true, y_pred = (y_true, y_pred[..., None]) if pred_rank == 1 else (tf.squeeze(y_true, -1), y_pred)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        y_true, y_pred = (y_true[..., None], y_pred) if true_rank == 1 else (y_true, tf.squeeze(y_pred, -1))
    if not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(f"{loss} expected y_true of the shape of y_pred {y_pred.shape}, got {y_true.shape}")
    return y_true, y_pred


def _scored_dtype(y_pred) -> tf.Tensor:
    y_pred = tf.convert_to_tensor(y_pred)
    return tf.cast(y_pred, tf.float32) if y_pred.dtype in (tf.float16, tf.bfloat16) else y_pred


def _clipped_log(probabilities: tf.Tensor) -> tf.Tensor:
    return tf.math.log(tf.clip_by_value(probabilities, EPSILON, 1.0 - EPSILON))


def _through_clip(probabilities: tf.Tensor, d_log: tf.Tensor) -> tf.Tensor:
    """`d_log / p` where the clip of `_clipped_log` let p through (EPSILON <= p <= 1 - EPSILON), 0 elsewhere:
    the derivative of log(clip(p)) times `d_log`, the gradient with respect to that log."""
    low, high = tf.constant(EPSILON, probabilities.dtype), tf.constant(1.0 - EPSILON, probabilities.dtype)
    inside = (probabilities >= low) & (probabilities <= high)
    return tf.where(inside, d_log / tf.where(inside, probabilities, tf.ones_like(probabilities)), tf.zeros_like(d_log))


def _mean(per_example: tf.Tensor) -> tf.Tensor:
    """Keras's sum_over_batch_size: the sum, divided by the number of examples."""
    return tf.reduce_sum(per_example) / tf.cast(tf.size(per_example), per_example.dtype)

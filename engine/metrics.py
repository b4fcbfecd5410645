"""Streaming metrics: running averages over an epoch, kept in variables.

A metric is a `tf.Module` whose state lives in `tf.Variable`s so that it can be updated
inside a compiled step (a `tf.function` cannot append to a Python list) and saved in a
checkpoint. The contract is Keras's: `update_state(...)` accumulates, `result()` reads,
`reset_state()` starts over (at each epoch).

Under a `tf.distribute` strategy each replica sees only its share of every batch. So, as
Keras's metrics, the state is ON_READ with SUM aggregation: each replica accumulates into
its own copy, with no communication during the step, and reading the state (`result()`, or
a checkpoint) sums the copies, which gives the total and count over all replicas. Without a
strategy these settings change nothing.
"""

import functools
from typing import Callable, Optional, Union

import tensorflow as tf


def _replica_sum_variable(name: str) -> tf.Variable:
    """A zero scalar that each replica updates locally and that reads as the sum over replicas."""
    return tf.Variable(0.0, trainable=False, name=name, synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.SUM)


class Mean(tf.Module):
    """Weighted running mean: `result = sum_k w_k x_k / sum_k w_k`.

    The training loop feeds each batch's mean loss with weight = batch size, so the epoch
    loss is the mean over examples even when the last batch is smaller (as Keras does).
    """

    def __init__(self, name: Optional[str] = None):
        super().__init__(name=name)
        self.total = _replica_sum_variable("total")
        self.count = _replica_sum_variable("count")

    def update_state(self, values: tf.Tensor, sample_weight: Optional[tf.Tensor] = None) -> None:
        """Adds `values` with weights `sample_weight`, Keras's way.

        Without weights every element counts once. With weights of lower rank than the
        values (one weight per update, or per row), the values are first averaged down to
        the weights' rank, so weight w_i weighs sample i as a whole: a scalar weight of 32
        on a batch's losses counts that batch as 32 examples, not 32 per element.
        """
        values = tf.cast(values, tf.float32)
        if sample_weight is None:
            weights = tf.ones_like(values)
        else:
            weights = tf.cast(sample_weight, tf.float32)
            extra_axes = values.shape.rank - weights.shape.rank
            if extra_axes > 0:
                values = tf.reduce_mean(values, axis=list(range(-extra_axes, 0)))
            weights = tf.broadcast_to(weights, tf.shape(values))
        self.total.assign_add(tf.reduce_sum(values * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def result(self) -> tf.Tensor:
        """The mean so far; 0 before any update (rather than NaN from 0 / 0)."""
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)


class SparseCategoricalAccuracy(Mean):
    """Fraction of examples whose most probable class is the integer label.

    `correct_i = [argmax_c p[i, c] == y_i]`, averaged over all examples seen. Works equally
    on probabilities and logits, since softmax does not change the argmax. As in Keras, labels
    may be [batch] or [batch, 1], and predictions [batch, ..., classes] are scored per
    position (per pixel for segmentation) against labels [batch, ...].
    """

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor,  # type: ignore[override]
                     sample_weight: Optional[tf.Tensor] = None) -> None:
        """Accumulates the batch's correct predictions; `y_true` [batch, ...], `y_pred` [batch, ..., classes],
        `sample_weight` as in `Mean.update_state` (weight w_i counts example i w_i times, as in Keras)."""
        labels = tf.cast(y_true, tf.int32)
        y_pred = tf.convert_to_tensor(y_pred)
        if labels.shape.rank == y_pred.shape.rank and labels.shape[-1] == 1:
            labels = tf.squeeze(labels, axis=-1)  # [batch, 1] -> [batch], else argmax [batch] vs [batch, 1] broadcasts
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)  # [batch, ...]
        correct = tf.cast(tf.equal(predicted, labels), tf.float32)
        super().update_state(correct, sample_weight)


class CategoricalAccuracy(Mean):
    """Fraction of examples whose most probable class is the most probable class of the target row:
    `correct_i = [argmax_c p[i, c] == argmax_c y[i, c]]`, for one-hot (or soft) labels, as Keras's."""

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor,  # type: ignore[override]
                     sample_weight: Optional[tf.Tensor] = None) -> None:
        correct = tf.equal(tf.argmax(y_pred, axis=-1), tf.argmax(y_true, axis=-1))  # [batch]
        super().update_state(tf.cast(correct, tf.float32), sample_weight)


class MeanAbsoluteError(Mean):
    """`mean_i mean_k |y[i, k] - y_hat[i, k]|`: a regression's error in the targets' own units."""

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor,  # type: ignore[override]
                     sample_weight: Optional[tf.Tensor] = None) -> None:
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.reshape(tf.cast(y_true, y_pred.dtype), tf.shape(y_pred))  # targets [N] for outputs [N, 1]
        error = tf.abs(y_true - y_pred)
        per_example = tf.reduce_mean(tf.reshape(error, [tf.shape(error)[0], -1]), axis=-1)  # [batch]
        super().update_state(per_example, sample_weight)


_BY_NAME = {"sparse_categorical_accuracy": SparseCategoricalAccuracy, "categorical_accuracy": CategoricalAccuracy,
            "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError}
_ACCURACY_FOR = {"sparse_categorical_crossentropy": SparseCategoricalAccuracy,
                 "categorical_crossentropy": CategoricalAccuracy}


def get(identifier: Union[str, Callable[[], Mean]], loss_name: str = "") -> Callable[[], Mean]:
    """Resolves one entry of `Trainer(metrics=[...])` to a function that makes a fresh metric.

    A name, as in Keras: "accuracy" is the accuracy that fits the loss named `loss_name` (sparse
    labels: `SparseCategoricalAccuracy`; one-hot rows: `CategoricalAccuracy`), others as listed in
    `_BY_NAME`; or a metric class (or any function) that makes one. The Trainer calls it twice: a
    metric for training and one for evaluation, so that one does not disturb the other.

    Raises:
      ValueError: for an unknown name, or "accuracy" with a loss that has no classes.
    """
    if callable(identifier):
        return identifier
    if identifier == "accuracy":
        if loss_name not in _ACCURACY_FOR:
            raise ValueError(f"metric 'accuracy' needs a classification loss ({', '.join(_ACCURACY_FOR)}), "
                             f"got {loss_name or 'another loss'}: pass metrics=['mean_absolute_error'] or none")
        return functools.partial(_ACCURACY_FOR[loss_name], "accuracy")
    if identifier in _BY_NAME:
        return functools.partial(_BY_NAME[identifier], identifier)
    raise ValueError(f"Unknown metric {identifier!r}: expected 'accuracy', one of {sorted(_BY_NAME)}, or a "
                     "metric class")

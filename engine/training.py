"""The training loop: forward pass, loss, gradients, update — repeated over batches and epochs.

One training step, the heart of it all (`train_step`):

    with tf.GradientTape() as tape:                     # record the forward pass
        logits = model.logits(images)                   # [batch, classes], before the output softmax
        loss = output_loss(loss_fn, labels, logits, model.output_activation)  # scalar: the batch's mean
    gradients = tape.gradient(loss, variables)           # backprop: dloss/dw for every w
    optimizer.apply_gradients(zip(gradients, variables)) # w <- w - lr * dloss/dw

The model hands the step its logits and names its output activation; `losses.output_loss`
scores softmax + cross-entropy from the logits (engine/losses.py says why: exact, and a gradient
that never vanishes). The gradients come from the tape, or from the backward pass written out
beside every layer (`Trainer(gradients="manual")`; engine/gradients.py shows both side by side).

`Trainer.fit` runs it over every batch of a freshly shuffled epoch, `epochs` times, and
measures loss and accuracy as it goes. The step is a plain function of tensors; the
graph and XLA modes only wrap it, K steps to a compiled call (`engine.execution`), so there
is one copy of the math. Whatever a run adds around the loop (checkpoints, early stopping,
TensorBoard, progress) is a callback (`engine.callbacks`); the loop itself stays this file.
"""

import functools
import itertools
import math
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from engine import execution, gradients as backprop, losses
from engine.batches import epoch_batches, execution_blocks
from engine.callbacks import Callback, Logs
from engine.errors import DataError
from engine.metrics import Mean, SparseCategoricalAccuracy


def train_step(model, loss_fn, optimizer, loss_metric: Mean, accuracy_metric: Mean,
               images: tf.Tensor, labels: tf.Tensor, gradients: Callable = backprop.tape_gradients) -> tf.Tensor:
    """One step of gradient descent on one batch; returns the batch's mean loss.

    `gradients` is `engine.gradients.tape_gradients` (the default) or `manual_gradients`. The name
    scopes change no math: they name the step's ops ('loss/...', 'gradients/...', 'update/...';
    each layer names its own), so a picture of the graph reads as these parts
    (`python -m engine.tour.graph_picture`).
    """
    loss, logits, grads = gradients(model, loss_fn, images, labels)  # scalar, [batch, classes], dloss/dw
    with tf.name_scope("update"):
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    with tf.name_scope("metrics"):
        _update_metrics(loss_metric, accuracy_metric, loss, model.output_activation(logits), labels)
    return loss


def test_step(model, loss_fn, loss_metric: Mean, accuracy_metric: Mean,
              images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """The forward half of `train_step`: loss and accuracy, no update; same returned loss."""
    logits = model.logits(images)  # [batch, classes]
    loss = losses.output_loss(loss_fn, labels, logits, model.output_activation)
    _update_metrics(loss_metric, accuracy_metric, loss, model.output_activation(logits), labels)
    return loss


def _update_metrics(loss_metric: Mean, accuracy_metric: Mean, loss: tf.Tensor, predictions: tf.Tensor,
                    labels: tf.Tensor) -> None:
    """The batch's mean loss weighted by its size (so the epoch's is the mean over examples, as Keras),
    and its accuracy on the model's outputs."""
    loss_metric.update_state(loss, sample_weight=tf.cast(tf.shape(labels)[0], tf.float32))
    accuracy_metric.update_state(labels, predictions)


class Trainer:
    """Trains and evaluates a model with a loss and an optimizer, in one execution mode.

    `gradients` is "tape" (`tf.GradientTape`) or "manual" (each layer's backward rule; see
    engine/gradients.py); a model or loss without rules is refused here, with the layer named.
    Training and evaluation keep their own metrics (`train_loss`, `train_accuracy`;
    `eval_loss`, `eval_accuracy`), so an evaluation in the middle of an epoch (a callback's)
    leaves the epoch's running figures alone.

    Example:
      >>> trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, SGD(0.01))
      >>> history = trainer.fit(x_train, y_train, epochs=30, batch_size=32)
      >>> trainer.evaluate(x_test, y_test)
      {'loss': 0.33, 'accuracy': 0.88}
    """

    def __init__(self, model, loss_fn: Callable, optimizer, mode: str = "graph", steps_per_execution: int = 1,
                 gradients: str = "tape"):
        if steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
        self.gradients = backprop.by_name(gradients)
        if gradients == "manual":
            backprop.check_manual(model, loss_fn)  # one clear error now, not a failure inside a trace
        self.model, self.loss_fn, self.optimizer, self.mode = model, loss_fn, optimizer, mode
        self.steps_per_execution = steps_per_execution
        self.stop_training = False  # a callback sets it to end `fit` after the current epoch, as in Keras
        self.train_loss, self.train_accuracy = Mean("loss"), SparseCategoricalAccuracy("accuracy")
        self.eval_loss, self.eval_accuracy = Mean("loss"), SparseCategoricalAccuracy("accuracy")
        self._train_function = self._test_function = None  # compiled once the data's shape is known

    def fit(self, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int,
            validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, seed: Optional[int] = 0,
            callbacks: Sequence[Callback] = (), initial_epoch: int = 1, initial_step: int = 0) -> List[Logs]:
        """Trains for `epochs` passes over the data; returns the history, one dict per epoch.

        Args:
          images, labels: the training set, float32 [N, ...] and int [N].
          epochs, batch_size: as in Keras; the last partial batch of each epoch is kept.
          validation_data: (images, labels) evaluated at the end of every epoch.
          seed: shuffling seed (see `epoch_batches`); None keeps the data's order.
          callbacks: `engine.callbacks.Callback`s, called in this order.
          initial_epoch, initial_step: where a resumed run begins: its epoch (from 1) and the
            steps of it already done, whose running metrics must hold their restored sums.
        """
        labels = class_indices(labels)
        train_function = self.make_train_function(images, labels, batch_size)
        images, labels = tf.constant(images, tf.float32), tf.constant(labels, tf.int32)
        examples = int(images.shape[0])
        steps = -(-examples // batch_size)  # batches per epoch, the last one maybe smaller
        cut_every = math.gcd(*(callback.cut_every for callback in callbacks))
        self.stop_training = False
        for callback in callbacks:
            callback.on_train_begin(steps)
        history, step = [], initial_step
        for epoch in range(initial_epoch, epochs + 1):
            if step == 0:  # else the restored sums of a part-done epoch carry on
                self.train_loss.reset_state()
                self.train_accuracy.reset_state()
            start = time.perf_counter()
            batches = itertools.islice(epoch_batches(examples, batch_size, seed, epoch), step, None)
            for block in execution_blocks(batches, self.steps_per_execution, cut_every, (epoch - 1) * steps + step):
                losses = train_function(images, labels, tf.constant(block, tf.int32))  # K steps, one call
                step += len(block)
                for callback in callbacks:
                    callback.on_block_end(epoch, step, losses)
            logs = {"epoch": epoch, **self.train_logs()}  # reading the metrics waits for the last step
            seconds = time.perf_counter() - start
            if validation_data is not None:
                logs.update(self.evaluate(*validation_data, batch_size=batch_size, prefix="val_"))
            logs.update(seconds=seconds, steps_per_second=steps / seconds)
            history.append(logs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            step = 0
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end(history)
        return history

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 32, prefix: str = "") -> Logs:
        """Mean loss and accuracy over a data set, in order, in batches of `batch_size`."""
        labels = class_indices(labels)
        test_function = self.make_test_function(images, labels, batch_size)
        images, labels = tf.constant(images, tf.float32), tf.constant(labels, tf.int32)
        self.eval_loss.reset_state()
        self.eval_accuracy.reset_state()
        batches = epoch_batches(int(images.shape[0]), batch_size, None, 0)
        for block in execution_blocks(batches, self.steps_per_execution):
            test_function(images, labels, tf.constant(block, tf.int32))
        return {f"{prefix}loss": float(self.eval_loss.result()), f"{prefix}accuracy": float(self.eval_accuracy.result())}

    def train_logs(self) -> Logs:
        """The running loss and accuracy of the epoch in progress (reading waits for its steps)."""
        return {"loss": float(self.train_loss.result()), "accuracy": float(self.train_accuracy.result())}

    def progress_logs(self) -> Logs:
        """What a progress display may read at any moment; on one device, `train_logs()`."""
        return self.train_logs()

    def make_train_function(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> Callable:
        """Checks the data against the model, then returns the compiled K-step training call:
        `(images, labels, block) -> K losses`, `block` being [K, batch] indices into the data set."""
        self._prepare(images, labels, batch_size)
        return self._train_function

    def make_test_function(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> Callable:
        """As `make_train_function`, for evaluation steps."""
        self._prepare(images, labels, batch_size)
        return self._test_function

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Creates the model's weights for `input_shape` (batch axis first), and the optimizer's slots."""
        if not self.model.built:
            self.model.build(tuple(input_shape))
        self.optimizer.build(self.model.trainable_variables)  # slots exist before any trace

    def _prepare(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> None:
        """Refuses data that would fail deep inside a compiled step, then builds and traces once."""
        _check_data(images, labels, batch_size)
        self.build((None,) + tuple(np.shape(images)[1:]))
        self._check_labels(images, labels)  # before tracing: its errors name the layer and both shapes
        if self._train_function is None:
            self._train_function, self._test_function = self._compile(tuple(np.shape(images)[1:]))

    def _compile(self, example_shape: Tuple[int, ...]) -> Tuple[Callable, Callable]:
        """Traces the K-step train and test calls (see `execution.compile_step`)."""
        # Unknown sizes everywhere: one trace serves every data set, block and batch size.
        signature = (tf.TensorSpec((None,) + example_shape, tf.float32),
                     tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, None), tf.int32))
        train = functools.partial(train_step, self.model, self.loss_fn, self.optimizer,
                                  self.train_loss, self.train_accuracy, gradients=self.gradients)
        test = functools.partial(test_step, self.model, self.loss_fn, self.eval_loss, self.eval_accuracy)
        runner = execution.run_steps if self.steps_per_execution > 1 else execution.run_one_step
        return (execution.compile_step(functools.partial(runner, train), self.mode, signature),
                execution.compile_step(functools.partial(runner, test), self.mode, signature))

    def _check_labels(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Refuses labels outside [0, classes): they would one-hot to zeros, a silently wrong loss.

        One forward pass on one example gives the number of classes, and fails first, naming
        the layer and both shapes, if the images do not fit the model.
        """
        classes = int(self.model(tf.constant(np.asarray(images[:1]), tf.float32)).shape[-1])
        labels = np.asarray(labels)
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if bad.size:
            raise DataError(f"label {labels[bad[0]]} at index {bad[0]} is out of range: the model has {classes} "
                            f"outputs, so labels must be in [0, {classes})")


def class_indices(labels) -> np.ndarray:
    """Labels as a vector [N] of class indices; a column [N, 1] is accepted and squeezed, as Keras's `fit` does.

    Raises:
      DataError: for labels of any other shape (one-hot rows need `categorical_crossentropy`, not this loop).
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"labels must be class indices of shape (N,) or (N, 1), got shape {labels.shape}")
    return labels


def _check_data(images, labels, batch_size: int) -> None:
    """Refuses what would otherwise fail deep inside a compiled step, or train on nothing."""
    if len(images) != len(labels):
        raise DataError(f"got {len(images)} images but {len(labels)} labels: they must pair up one to one")
    if len(images) == 0:
        raise DataError("the data set is empty: nothing to train or evaluate on")
    if not np.issubdtype(np.asarray(labels).dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {np.asarray(labels).dtype}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

"""The training loop: forward pass, loss, gradients, update — repeated over batches and epochs.

One training step, the heart of it all (`train_step`):

    with tf.GradientTape() as tape:          # record the forward pass
        predictions = model(images)          # [batch, classes]
        loss = loss_fn(labels, predictions)  # scalar: mean over the batch
    gradients = tape.gradient(loss, variables)           # backprop: dloss/dw for every w
    optimizer.apply_gradients(zip(gradients, variables)) # w <- w - lr * dloss/dw

`Trainer.fit` runs it over every batch of a freshly shuffled epoch, `epochs` times, and
measures loss and accuracy as it goes. The step is a plain function of tensors; the
graph and XLA modes only wrap it (`engine.execution`), so there is one copy of the math.
"""

import functools
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from engine import execution
from engine.metrics import Mean, SparseCategoricalAccuracy

Logs = Dict[str, float]


def train_step(model, loss_fn, optimizer, loss_metric: Mean, accuracy_metric: Mean,
               images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """One step of gradient descent on one batch; returns the batch's mean loss."""
    with tf.GradientTape() as tape:
        predictions = model(images)  # [batch, classes]
        loss = loss_fn(labels, predictions)  # scalar
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)  # one tensor per variable, same shapes
    optimizer.apply_gradients(zip(gradients, variables))
    batch_size = tf.cast(tf.shape(labels)[0], tf.float32)
    loss_metric.update_state(loss, sample_weight=batch_size)  # mean over examples, as Keras
    accuracy_metric.update_state(labels, predictions)
    return loss


def test_step(model, loss_fn, loss_metric: Mean, accuracy_metric: Mean,
              images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """The forward half of `train_step`: loss and accuracy, no update."""
    predictions = model(images)  # [batch, classes]
    loss = loss_fn(labels, predictions)
    loss_metric.update_state(loss, sample_weight=tf.cast(tf.shape(labels)[0], tf.float32))
    accuracy_metric.update_state(labels, predictions)
    return loss


def epoch_batches(num_examples: int, batch_size: int, seed: Optional[int], epoch: int) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's batches; the last one is smaller when `batch_size` does not divide.

    With a seed, the order is a permutation drawn from (seed, epoch): a fresh shuffle every
    epoch, yet the same on every run — and recomputable when resuming at any epoch. Without
    a seed (None) the data are taken in order, which the Keras comparison uses.
    """
    order = np.arange(num_examples)
    if seed is not None:
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    for start in range(0, num_examples, batch_size):
        yield order[start:start + batch_size]


class Trainer:
    """Trains and evaluates a model with a loss and an optimizer, in one execution mode.

    Example:
      >>> trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, SGD(0.01))
      >>> history = trainer.fit(x_train, y_train, epochs=30, batch_size=32)
      >>> trainer.evaluate(x_test, y_test)
      {'loss': 0.33, 'accuracy': 0.88}
    """

    def __init__(self, model, loss_fn: Callable, optimizer, mode: str = "graph"):
        self.model, self.loss_fn, self.optimizer, self.mode = model, loss_fn, optimizer, mode
        self.loss_metric, self.accuracy_metric = Mean("loss"), SparseCategoricalAccuracy("accuracy")
        self._train_step = self._test_step = None  # compiled on first use, once the data's shape is known

    def _compile(self, images: tf.Tensor) -> None:
        if self._train_step is not None:
            return
        if not self.model.built:
            self.model.build((None,) + tuple(images.shape[1:]))
        self.optimizer.build(self.model.trainable_variables)  # slots exist before any trace
        signature = (tf.TensorSpec((None,) + tuple(images.shape[1:]), tf.float32),
                     tf.TensorSpec((None,), tf.int32))
        metrics = (self.loss_metric, self.accuracy_metric)
        train = functools.partial(train_step, self.model, self.loss_fn, self.optimizer, *metrics)
        test = functools.partial(test_step, self.model, self.loss_fn, *metrics)
        self._train_step = execution.compile_step(train, self.mode, signature)
        self._test_step = execution.compile_step(test, self.mode, signature)

    def _metrics(self, prefix: str = "") -> Logs:
        return {f"{prefix}loss": float(self.loss_metric.result()),
                f"{prefix}accuracy": float(self.accuracy_metric.result())}

    def _reset_metrics(self) -> None:
        self.loss_metric.reset_state()
        self.accuracy_metric.reset_state()

    def fit(self, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int,
            validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, seed: Optional[int] = 0,
            on_epoch_end: Sequence[Callable[[Logs], None]] = (),
            progress: Optional[Callable[[int, int, Callable[[], Logs]], None]] = None,
            on_step_end: Sequence[Callable[[int, tf.Tensor], None]] = ()) -> List[Logs]:
        """Trains for `epochs` passes over the data; returns the history, one dict per epoch.

        Args:
          images, labels: the training set, float32 [N, ...] and int [N].
          epochs, batch_size: as in Keras; the last partial batch of each epoch is kept.
          validation_data: (images, labels) evaluated at the end of every epoch.
          seed: shuffling seed (see `epoch_batches`); None keeps the data's order.
          on_epoch_end: called with each epoch's logs (epoch, loss, accuracy, val_loss,
            val_accuracy, seconds, steps_per_second).
          progress: called after each step with (step, steps, read_metrics).
          on_step_end: called after each step with (step number counted from 1 across
            epochs, the batch's loss tensor); reading the loss waits for the step.
        """
        images, labels = tf.constant(images, tf.float32), tf.constant(labels, tf.int32)
        self._compile(images)
        steps = -(-int(images.shape[0]) // batch_size)
        history = []
        for epoch in range(1, epochs + 1):
            self._reset_metrics()
            start = time.perf_counter()
            for step, index in enumerate(epoch_batches(int(images.shape[0]), batch_size, seed, epoch), 1):
                loss = self._train_step(tf.gather(images, index), tf.gather(labels, index))
                for callback in on_step_end:
                    callback((epoch - 1) * steps + step, loss)
                if progress is not None:
                    progress(step, steps, self._metrics)
            logs = {"epoch": epoch, **self._metrics()}  # reading the metrics waits for the last step
            seconds = time.perf_counter() - start
            if validation_data is not None:
                logs.update(self.evaluate(*validation_data, batch_size=batch_size, prefix="val_"))
            logs.update(seconds=seconds, steps_per_second=steps / seconds)
            history.append(logs)
            for callback in on_epoch_end:
                callback(logs)
        return history

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 32, prefix: str = "") -> Logs:
        """Mean loss and accuracy over a data set, in order, in batches of `batch_size`."""
        images, labels = tf.constant(images, tf.float32), tf.constant(labels, tf.int32)
        self._compile(images)
        self._reset_metrics()
        for start in range(0, int(images.shape[0]), batch_size):
            self._test_step(images[start:start + batch_size], labels[start:start + batch_size])
        return self._metrics(prefix)

"""The training loop: forward pass, loss, gradients, update — repeated over batches and epochs.

One training step, the heart of it all (`train_step`):

    with tf.GradientTape() as tape:          # record the forward pass
        predictions = model(images)          # [batch, classes]
        loss = loss_fn(labels, predictions)  # scalar: mean over the batch
    gradients = tape.gradient(loss, variables)           # backprop: dloss/dw for every w
    optimizer.apply_gradients(zip(gradients, variables)) # w <- w - lr * dloss/dw

`Trainer.fit` runs it over every batch of a freshly shuffled epoch, `epochs` times, and
measures loss and accuracy as it goes. The step is a plain function of tensors; the
graph and XLA modes only wrap it, K steps to a compiled call (`engine.execution`), so there
is one copy of the math.
"""

import dataclasses
import functools
import itertools
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from engine import execution
from engine.batches import epoch_batches, execution_blocks
from engine.errors import DataError
from engine.metrics import Mean, SparseCategoricalAccuracy

if TYPE_CHECKING:
    from engine.safeguards import Safeguards

Logs = Dict[str, float]


def train_step(model, loss_fn, optimizer, loss_metric: Mean, accuracy_metric: Mean,
               images: tf.Tensor, labels: tf.Tensor, global_batch_size: Optional[tf.Tensor] = None) -> tf.Tensor:
    """One step of gradient descent on one batch; returns the batch's mean loss.

    The name scopes change no math: they name the step's ops ('loss/...', 'gradients/...',
    'update/...'; each layer names its own), so a picture of the graph reads as these four parts
    (`python -m engine.graph_picture`).

    With `global_batch_size` B (a replica's step under `tf.distribute`, engine/replicated.py),
    the batch is this replica's share of B examples and the loss differentiated is its part
    of the global mean, `mean_share * share / B = sum_share loss_i / B` (what
    `tf.nn.compute_average_loss` computes), so the replicas' gradients and returned losses
    SUM to those of the whole batch.
    """
    with tf.GradientTape() as tape:
        predictions = model(images)  # [batch, classes]
        with tf.name_scope("loss"):
            mean_loss = loss_fn(labels, predictions)  # scalar
            batch_size = tf.cast(tf.shape(labels)[0], tf.float32)
            loss = mean_loss if global_batch_size is None else mean_loss * batch_size / global_batch_size
    variables = model.trainable_variables
    with tf.name_scope("gradients"):
        gradients = tape.gradient(loss, variables)  # one tensor per variable, same shapes
    with tf.name_scope("update"):
        optimizer.apply_gradients(zip(gradients, variables))
    with tf.name_scope("metrics"):
        loss_metric.update_state(mean_loss, sample_weight=batch_size)  # mean over examples, as Keras
        accuracy_metric.update_state(labels, predictions)
    return loss


def test_step(model, loss_fn, loss_metric: Mean, accuracy_metric: Mean,
              images: tf.Tensor, labels: tf.Tensor, global_batch_size: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The forward half of `train_step`: loss and accuracy, no update; same returned loss."""
    predictions = model(images)  # [batch, classes]
    mean_loss = loss_fn(labels, predictions)
    batch_size = tf.cast(tf.shape(labels)[0], tf.float32)
    loss_metric.update_state(mean_loss, sample_weight=batch_size)
    accuracy_metric.update_state(labels, predictions)
    return mean_loss if global_batch_size is None else mean_loss * batch_size / global_batch_size


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


class Trainer:
    """Trains and evaluates a model with a loss and an optimizer, in one execution mode.

    Example:
      >>> trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, SGD(0.01))
      >>> history = trainer.fit(x_train, y_train, epochs=30, batch_size=32)
      >>> trainer.evaluate(x_test, y_test)
      {'loss': 0.33, 'accuracy': 0.88}
    """

    def __init__(self, model, loss_fn: Callable, optimizer, mode: str = "graph", steps_per_execution: int = 1):
        if steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
        self.model, self.loss_fn, self.optimizer, self.mode = model, loss_fn, optimizer, mode
        self.steps_per_execution = steps_per_execution
        self.stop_training = False  # set by an epoch-end callback (early stopping) to end `fit` there, as in Keras
        self.loss_metric, self.accuracy_metric = Mean("loss"), SparseCategoricalAccuracy("accuracy")
        self._train_steps = self._test_steps = None  # compiled on first use, once the data's shape is known

    def _build(self, images: tf.Tensor) -> None:
        """Creates the model's weights for `images`' shape, and the optimizer's slots, eagerly."""
        if not self.model.built:
            self.model.build((None,) + tuple(images.shape[1:]))
        self.optimizer.build(self.model.trainable_variables)  # slots exist before any trace

    def _compile(self, images: tf.Tensor) -> None:
        """Traces the compiled K-step functions (see `execution.compile_step`), once."""
        if self._train_steps is not None:
            return
        self._build(images)
        # Unknown sizes everywhere: one trace serves every data set, block and batch size.
        signature = (tf.TensorSpec((None,) + tuple(images.shape[1:]), tf.float32),
                     tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, None), tf.int32))
        metrics = (self.loss_metric, self.accuracy_metric)
        train = functools.partial(train_step, self.model, self.loss_fn, self.optimizer, *metrics)
        test = functools.partial(test_step, self.model, self.loss_fn, *metrics)
        runner = execution.run_steps if self.steps_per_execution > 1 else execution.run_one_step
        self._train_steps = execution.compile_step(functools.partial(runner, train), self.mode, signature)
        self._test_steps = execution.compile_step(functools.partial(runner, test), self.mode, signature)

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
            on_step_end: Sequence[Callable[[int, tf.Tensor], None]] = (),
            guard: Optional["Safeguards"] = None) -> List[Logs]:
        """Trains for `epochs` passes over the data; returns the history, one dict per epoch.

        Args:
          images, labels: the training set, float32 [N, ...] and int [N].
          epochs, batch_size: as in Keras; the last partial batch of each epoch is kept.
          validation_data: (images, labels) evaluated at the end of every epoch.
          seed: shuffling seed (see `epoch_batches`); None keeps the data's order.
          on_epoch_end: called with each epoch's logs (epoch, loss, accuracy, val_loss,
            val_accuracy, seconds, steps_per_second). One may set `trainer.stop_training`
            to end training after this epoch's callbacks.
          progress: called after each compiled call with (steps done, steps per epoch,
            read_metrics).
          on_step_end: called after each step with (step number counted from 1 across
            epochs, the batch's loss tensor); reading the loss waits for the step.
          guard: an `engine.safeguards.Safeguards`: where to start (a restored epoch, step and
            history), and what to do after each compiled call and epoch (check for NaN, write
            checkpoints, stop on a signal); compiled calls end on its checkpoint steps.
        """
        _check_data(images, labels, batch_size)
        images = tf.constant(images, tf.float32)
        self._build(images)
        self._check_labels(images, labels)  # before tracing: its errors name the layer and both shapes
        self._compile(images)
        labels = tf.constant(labels, tf.int32)
        steps = -(-int(images.shape[0]) // batch_size)
        self.stop_training = False
        first_epoch, step, history = (1, 0, []) if guard is None else dataclasses.astuple(guard.start(steps))
        cut_every = guard.checkpoint_every if guard is not None else 0
        for epoch in range(first_epoch, epochs + 1):
            if step == 0:  # else the restored sums of a part-done epoch carry on
                self._reset_metrics()
            start = time.perf_counter()
            batches = itertools.islice(epoch_batches(int(images.shape[0]), batch_size, seed, epoch), step, None)
            for block in execution_blocks(batches, self.steps_per_execution, cut_every, (epoch - 1) * steps + step):
                block_losses = self._train_block(images, labels, block)
                if on_step_end:  # reading the losses waits for the block to finish
                    for offset, loss in enumerate(block_losses, 1):
                        for callback in on_step_end:
                            callback((epoch - 1) * steps + step + offset, loss)
                step += len(block)
                if guard is not None:
                    guard.block_end(epoch, step, block_losses, history)
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
            step = 0
            if guard is not None:
                guard.epoch_end(epoch, history)
            if self.stop_training:
                break
        return history

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 32, prefix: str = "") -> Logs:
        """Mean loss and accuracy over a data set, in order, in batches of `batch_size`."""
        _check_data(images, labels, batch_size)
        images = tf.constant(images, tf.float32)
        self._build(images)
        self._check_labels(images, labels)  # before tracing: its errors name the layer and both shapes
        self._compile(images)
        labels = tf.constant(labels, tf.int32)
        self._reset_metrics()
        for block in execution_blocks(epoch_batches(int(images.shape[0]), batch_size, None, 0), self.steps_per_execution):
            self._test_block(images, labels, block)
        return self._metrics(prefix)

    def _check_labels(self, images: tf.Tensor, labels: np.ndarray) -> None:
        """Refuses labels outside [0, classes): they would one-hot to zeros, a silently wrong loss.

        One forward pass on one example gives the number of classes, and fails first, naming
        the layer and both shapes, if the images do not fit the model.
        """
        classes = int(self.model(images[:1]).shape[-1])
        labels = np.asarray(labels)
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if bad.size:
            raise DataError(f"label {labels[bad[0]]} at index {bad[0]} is out of range: the model has {classes} "
                            f"outputs, so labels must be in [0, {classes})")

    def _train_block(self, images: tf.Tensor, labels: tf.Tensor, block: np.ndarray) -> tf.Tensor:
        """Runs one compiled call: the training steps of `block` ([K, batch] indices); returns K losses."""
        return self._train_steps(images, labels, tf.constant(block, tf.int32))

    def _test_block(self, images: tf.Tensor, labels: tf.Tensor, block: np.ndarray) -> tf.Tensor:
        """As `_train_block`, for evaluation steps."""
        return self._test_steps(images, labels, tf.constant(block, tf.int32))

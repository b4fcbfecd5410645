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
import time
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from engine import batches, data_checks, execution, gradients as backprop, losses, metrics as metric_kinds, optimizers
from engine import tracing
from engine.callbacks import Callback, Logs, cut_every
from engine.metrics import Mean


def train_step(model, loss_fn, optimizer, loss_metric: Mean, metrics: Sequence[Mean],
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
        _update_metrics(loss_metric, metrics, loss, model.output_activation(logits), labels)
    return loss


def test_step(model, loss_fn, loss_metric: Mean, metrics: Sequence[Mean],
              images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """The forward half of `train_step`: loss and metrics, no update; same returned loss."""
    logits = model.logits(images)  # [batch, classes]
    loss = losses.output_loss(loss_fn, labels, logits, model.output_activation)
    _update_metrics(loss_metric, metrics, loss, model.output_activation(logits), labels)
    return loss


def _update_metrics(loss_metric: Mean, metrics: Sequence[Mean], loss: tf.Tensor, predictions: tf.Tensor,
                    labels: tf.Tensor) -> None:
    """The batch's mean loss weighted by its size (so the epoch's is the mean over examples, as Keras),
    and every metric on the model's outputs."""
    loss_metric.update_state(loss, sample_weight=tf.cast(tf.shape(labels)[0], tf.float32))
    for metric in metrics:
        metric.update_state(labels, predictions)


class Trainer:
    """Trains and evaluates a model with a loss and an optimizer, in one execution mode.

    `gradients` is "tape" (`tf.GradientTape`) or "manual" (each layer's backward rule; see
    engine/gradients.py); a model or loss without rules is refused here, with the layer named.
    `shards` > 1 computes each step's gradients on that many row blocks of the batch, combined into
    the whole batch's (engine/gradients.py's `sharded`: the same numbers to rounding).
    `metrics` are what is measured besides the loss (names as in Keras, or metric classes;
    `engine.metrics.get`); by default "accuracy" for the cross-entropies and nothing for other
    losses. Training and evaluation keep their own metrics (`train_loss`, `train_metrics`;
    `eval_loss`, `eval_metrics`), so an evaluation in the middle of an epoch (a callback's)
    leaves the epoch's running figures alone. The labels are checked by the loss they feed
    (`engine.data_checks`): class indices, one-hot rows, or regression targets. `optimizer` is an
    `engine.optimizers.Optimizer` or a name ("sgd", "adam", "adamw", "rmsprop": Keras's defaults).

    Example:
      >>> trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, SGD(0.01))
      >>> history = trainer.fit(x_train, y_train, epochs=30, batch_size=32)
      >>> trainer.evaluate(x_test, y_test)
      {'loss': 0.33, 'accuracy': 0.88}
    """

    def __init__(self, model, loss_fn: Callable, optimizer: Union[str, optimizers.Optimizer], mode: str = "graph",
                 steps_per_execution: int = 1, gradients: str = "tape", metrics: Optional[Sequence[Union[str, Callable]]] = None,
                 shards: int = 1):
        if steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
        self.gradients, self.shards = backprop.sharded(backprop.by_name(gradients), shards), shards
        if gradients == "manual":
            backprop.check_manual(model, loss_fn)  # one clear error now, not a failure inside a trace
        self.model, self.loss_fn, self.optimizer, self.mode = model, loss_fn, optimizers.get(optimizer), mode
        self.steps_per_execution = steps_per_execution
        self.stop_training = False  # a callback sets it to end `fit` after the current epoch, as in Keras
        loss_name = getattr(getattr(loss_fn, "func", loss_fn), "__name__", "")
        if metrics is None:
            metrics = ["accuracy"] if loss_name.endswith("categorical_crossentropy") else []
        makers = [metric_kinds.get(metric, loss_name) for metric in metrics]
        self.train_loss, self.train_metrics = Mean("loss"), [make() for make in makers]
        self.eval_loss, self.eval_metrics = Mean("loss"), [make() for make in makers]
        self._train_function = self._test_function = None  # compiled once the data's shape is known

    def fit(self, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int,
            validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, seed: Optional[int] = 0,
            callbacks: Sequence[Callback] = (), initial_epoch: int = 1, initial_step: int = 0) -> List[Logs]:
        """Trains for `epochs` passes over the data; returns the history, one dict per epoch.

        Args:
          images, labels: the training set, float [N, ...] and what the loss takes (`engine.data_checks`).
          epochs, batch_size: as in Keras; the last partial batch of each epoch is kept.
          validation_data: (images, labels) evaluated at the end of every epoch.
          seed: shuffling seed (see `batches.epoch_batches`); None keeps the data's order.
          callbacks: `engine.callbacks.Callback`s, called in this order.
          initial_epoch, initial_step: where a resumed run begins: its epoch (from 1) and the
            steps of it already done, whose running metrics must hold their restored sums.
        """
        images, labels = self._checked(images, labels, batch_size)
        train_function = self._train_function
        steps = batches.steps_per_epoch(len(labels), batch_size)
        self.stop_training = False
        for callback in callbacks:
            callback.on_train_begin(steps)
        history, step = [], initial_step
        for epoch in range(initial_epoch, epochs + 1):
            if step == 0:  # else the restored sums of a part-done epoch carry on
                _reset([self.train_loss, *self.train_metrics])
            start = time.perf_counter()
            for block in batches.epoch_blocks(len(labels), batch_size, seed, epoch, self.steps_per_execution,
                                              cut_every(callbacks), step):
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
        """Mean loss and metrics over a data set, in order, in batches of `batch_size`."""
        images, labels = self._checked(images, labels, batch_size)
        _reset([self.eval_loss, *self.eval_metrics])
        for block in batches.epoch_blocks(len(labels), batch_size, None, 1, self.steps_per_execution):
            self._test_function(images, labels, tf.constant(block, tf.int32))
        return {f"{prefix}{metric.name}": float(metric.result()) for metric in [self.eval_loss, *self.eval_metrics]}

    def train_logs(self) -> Logs:
        """The running loss and metrics of the epoch in progress (reading waits for its steps)."""
        return {metric.name: float(metric.result()) for metric in [self.train_loss, *self.train_metrics]}

    def progress_logs(self) -> Logs:
        """What a progress display may read at any moment; on one device, `train_logs()`."""
        return self.train_logs()

    def make_train_function(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> Callable:
        """Checks the data against the model, then returns the compiled K-step training call:
        `(images, labels, block) -> K losses`, `block` being [K, batch] indices into the data set."""
        self._checked(images, labels, batch_size)
        return self._train_function

    def make_test_function(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> Callable:
        """As `make_train_function`, for evaluation steps."""
        self._checked(images, labels, batch_size)
        return self._test_function

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Creates the model's weights for `input_shape` (batch axis first), and the optimizer's slots."""
        if not self.model.built:
            self.model.build(tuple(input_shape))
        self.optimizer.build(self.model.trainable_variables)  # slots exist before any trace

    def user_code(self) -> Optional[str]:
        """The first code the steps call that the engine did not write (e.g. "my_model.Gate.call"),
        which AutoGraph must rewrite, or None: then the steps are traced as written
        (engine/tracing.py says why, and what it saves)."""
        return tracing.user_code(self.model, self.loss_fn, self.optimizer, self.gradients, self.train_loss,
                                 self.train_metrics, self.eval_loss, self.eval_metrics)

    def _checked(self, images, labels, batch_size: int) -> Tuple[tf.Tensor, tf.Tensor]:
        """The data as tensors once `engine.data_checks` accepts them, the model built and both calls traced."""
        images, labels = data_checks.check_arguments(images, labels, batch_size)
        self.build((None,) + images.shape[1:])
        # One forward pass on one example gives the outputs' shape, and fails first, naming the layer and
        # both shapes, if the images do not fit the model.
        output_shape = self.model(tf.constant(images[:1], tf.float32)).shape[1:]
        labels = data_checks.checked_labels(self.loss_fn, labels, output_shape)
        if self._train_function is None:
            self._train_function, self._test_function = self._compile(images.shape[1:], labels)
        return tf.constant(images, self.data_dtype), tf.constant(labels)

    @property
    def data_dtype(self) -> tf.DType:
        """The dtype the compiled calls take the images in (`execution.data_dtype`)."""
        return execution.data_dtype(self.mode, compute_dtype(self.model))

    def as_tensors(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> Tuple[tf.Tensor, tf.Tensor]:
        """The data set as the calls of `make_train_function` and `make_test_function` take it, once checked."""
        return self._checked(images, labels, batch_size)

    def _compile(self, example_shape: Tuple[int, ...], labels: np.ndarray) -> Tuple[Callable, Callable]:
        """Traces the K-step train and test calls (`execution.compile_steps`)."""
        train = functools.partial(train_step, self.model, self.loss_fn, self.optimizer, self.train_loss,
                                  self.train_metrics, gradients=self.gradients)
        test = functools.partial(test_step, self.model, self.loss_fn, self.eval_loss, self.eval_metrics)
        spec = tf.TensorSpec((None,) + labels.shape[1:], tf.as_dtype(labels.dtype))
        autograph = self.user_code() is not None
        compiled = [execution.compile_steps(step, self.mode, self.steps_per_execution, example_shape, spec, autograph,
                                            self.data_dtype) for step in (train, test)]
        return compiled[0], compiled[1]


def compute_dtype(model) -> tf.DType:
    """The dtype every layer of `model` computes in (bfloat16 under "mixed_bfloat16"), or float32 if
    they differ or a part of the model does not say (a container's layers say, not the container)."""
    parts = [module for module in (model, *getattr(model, "submodules", ())) if not getattr(module, "layers", None)]
    dtypes = {getattr(part, "compute_dtype", None) for part in parts}
    return dtypes.pop() if len(dtypes) == 1 and None not in dtypes else tf.float32


def _reset(metrics: Sequence[Mean]) -> None:
    for metric in metrics:
        metric.reset_state()

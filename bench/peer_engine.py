"""The reference workload in the engine, as `Trainer.fit` runs it: the compiled K-step call of
`Trainer.make_train_function` on the data held as tensors, fed the epoch's [K, batch] index blocks
(`engine.batches.execution_blocks`), the running loss and accuracy read at the end.

`setting["precision"] == "bfloat16"` swaps only how the step's gradients are computed, for
`bfloat16_gradients`: the float32 weights cast to bfloat16 at every step, the matmuls in bfloat16,
the loss in float32 (Keras's "mixed_bfloat16" policy). It measures what that precision is worth
on this CPU, in graph mode (TensorFlow's MatMul, oneDNN) and under XLA; it is the benchmark's
experiment, not an engine feature.
"""

from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from bench import workloads
from engine import batches, losses, optimizers
from engine.training import Trainer
from layers import mlp


def versions() -> dict:
    return {"tensorflow": tf.__version__}


def bfloat16_gradients(model, loss_fn, images: tf.Tensor, labels: tf.Tensor):
    """`engine.gradients.tape_gradients` with every matmul in bfloat16 (float32 weights cast per step)."""
    dense = [layer for layer in model.layers if hasattr(layer, "kernel")]
    with tf.GradientTape() as tape:
        x = tf.cast(tf.reshape(images, [-1, dense[0].input_last_dim]), tf.bfloat16)  # [B, 784]
        for layer in dense:
            z = tf.matmul(x, tf.cast(layer.kernel, tf.bfloat16)) + tf.cast(layer.bias, tf.bfloat16)  # [B, units]
            x = layer.activation(z) if layer is not dense[-1] else z
        logits = tf.cast(x, tf.float32)  # [B, 10]: the loss and its softmax in float32
        loss = losses.output_loss(loss_fn, labels, logits, model.output_activation)
    return loss, logits, tape.gradient(loss, model.trainable_variables)


class Runner:
    """The workload at one batch size in `setting["mode"]` (graph / xla) with K steps per call."""

    def __init__(self, setting: dict, batch_size: int, weights: Sequence[Tuple[np.ndarray, np.ndarray]], data: dict):
        self.batch_size, self.k = batch_size, setting["steps_per_execution"]
        model = mlp(workloads.HIDDEN, 10)
        model.build((None, 28, 28))
        for variable, value in zip(model.trainable_variables, [array for pair in weights for array in pair]):
            variable.assign(value)
        self.trainer = Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(workloads.LEARNING_RATE),
                               setting["mode"], self.k)
        if setting.get("precision") == "bfloat16":
            self.trainer.gradients = bfloat16_gradients  # read when the step is traced, just below
        images, labels = data["train_images"], data["train_labels"]
        self.train_function = self.trainer.make_train_function(images, labels, batch_size)
        self.images, self.labels = tf.constant(images), tf.constant(labels)
        self.test = (data["test_images"], data["test_labels"])

    def train(self, order: np.ndarray) -> Tuple[float, float]:
        """Trains on the batches of `order` [steps, B]; returns their mean loss and accuracy."""
        for metric in (self.trainer.train_loss, *self.trainer.train_metrics):
            metric.reset_state()
        for block in batches.execution_blocks(iter(order), self.k):
            self.train_function(self.images, self.labels, tf.constant(block))
        logs = self.trainer.train_logs()  # reading the metrics waits for the last step
        return logs["loss"], logs["accuracy"]

    def evaluate(self) -> float:
        return self.trainer.evaluate(*self.test, batch_size=1000)["accuracy"]

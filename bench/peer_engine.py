"""The reference workload in the engine, as `Trainer.fit` runs it: the compiled K-step call of
`Trainer.make_train_function` on the data held as tensors, fed the epoch's [K, batch] index blocks
(`engine.batches.execution_blocks`), the running loss and accuracy read at the end.

`setting["precision"] == "bfloat16"` builds the model in Keras's "mixed_bfloat16" policy, as
`train.py --precision=mixed_bfloat16` does (layers/layer.py): float32 weights, bfloat16 matmuls,
the loss in float32.
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


class Runner:
    """The workload at one batch size in `setting["mode"]` (graph / xla) with K steps per call, each
    step's batch in `setting["shards"]` row blocks (engine/gradients.py's `sharded`)."""

    def __init__(self, setting: dict, batch_size: int, weights: Sequence[Tuple[np.ndarray, np.ndarray]], data: dict):
        self.batch_size, self.k = batch_size, setting["steps_per_execution"]
        model = mlp(workloads.HIDDEN, 10, dtype="mixed_bfloat16" if setting.get("precision") == "bfloat16" else "float32")
        model.build((None, 28, 28))
        for variable, value in zip(model.trainable_variables, [array for pair in weights for array in pair]):
            variable.assign(value)
        self.trainer = Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(workloads.LEARNING_RATE),
                               setting["mode"], self.k, shards=setting.get("shards", 1))
        images, labels = data["train_images"], data["train_labels"]
        self.train_function = self.trainer.make_train_function(images, labels, batch_size)
        self.images, self.labels = self.trainer.as_tensors(images, labels, batch_size)  # as fit holds them
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

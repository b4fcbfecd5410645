"""The reference workload in Keras 3 (TensorFlow backend), through `model.fit`, as a user runs it:

    mode "default"   compile()'s defaults (jit_compile="auto", one step per call)
    mode "jit-spe"   jit_compile=True, steps_per_execution=K

Each epoch is one `fit(epochs=1)` on a `tf.data` pipeline of that epoch's batches of indices,
each gathered from the arrays held as tensors: what `fit` itself builds from arrays
(shuffled indices, batched, one gather per batch), with the shared batch order instead of its own.
"""

from typing import Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from bench import workloads


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


class Runner:
    """The workload at one batch size through `fit`, compiled as `setting["mode"]`."""

    def __init__(self, setting: dict, batch_size: int, weights: Sequence[Tuple[np.ndarray, np.ndarray]], data: dict):
        self.batch_size = batch_size
        self.model = workloads.keras_model(workloads.Setting(setting["name"], "keras", setting["mode"],
                                                             setting["steps_per_execution"]))
        self.model.set_weights([array for pair in weights for array in pair])
        self.images, self.labels = tf.constant(data["train_images"]), tf.constant(data["train_labels"])
        self.test = (data["test_images"], data["test_labels"])

    def train(self, order: np.ndarray) -> Tuple[float, float]:
        """One `fit` epoch over the batches of `order` [steps, B]; returns its mean loss and accuracy."""
        batches = (tf.data.Dataset.from_tensor_slices(order)
                   .map(lambda index: (tf.gather(self.images, index), tf.gather(self.labels, index)),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
        history = self.model.fit(batches, epochs=1, verbose=0).history
        return history["loss"][-1], history["accuracy"][-1]

    def evaluate(self) -> float:
        return self.model.evaluate(*self.test, batch_size=1000, verbose=0, return_dict=True)["accuracy"]

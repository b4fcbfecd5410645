"""Activation: a plain function as a layer, as `keras.layers.Activation`.

`Sequential([Flatten(), Dense(8), activations.relu, Dense(10)])` works because `Sequential.add`
wraps a plain function in this layer. Its backward rule is the function's own
(`engine.activations.BACKWARD`); as a model's last layer it is the output activation, so a
softmax layer after a linear Dense is trained on the logits, like Dense(softmax).
"""

from typing import Callable, Optional, Union

import tensorflow as tf

from engine import activations
from layers.layer import Layer


class Activation(Layer):
    """Applies `activation` element-wise (softmax: along the last axis). No variables."""

    def __init__(self, activation: Union[str, Callable], name: Optional[str] = None, dtype: str = "float32"):
        super().__init__(name=name, dtype=dtype)
        self.activation = activations.get(activation)

    @property
    def output_activation(self) -> Callable:
        return self.activation

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.activation(inputs)

    def pre_activation(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs

    def backward(self, kept, d_outputs: tf.Tensor):
        """dL/dx = f'(x) * dL/dy, from the activation's rule and the outputs kept."""
        return activations.backward(self.activation)(kept[1], d_outputs), []

    def backward_logits(self, kept, d_logits: tf.Tensor):
        return d_logits, []  # the pre-activation is the input itself

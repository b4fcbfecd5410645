"""Flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

import math
from typing import Optional

import tensorflow as tf

from layers import naming
from layers.functional import connect, is_symbolic


class Flatten(tf.Module):
    """Turns each example into a vector, keeping the batch axis (which may be unknown).

    An image batch [batch, 28, 28] becomes [batch, 784], the input a Dense layer expects.
    No variables.
    """

    def __init__(self, name: Optional[str] = None):
        super().__init__(name=name or naming.unique_name("flatten"))

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        """(batch, d1, ..., dk) -> (batch, d1 * ... * dk); the product is None if any d is."""
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank is None or input_shape.rank < 2:
            raise ValueError(
                f"Flatten '{self.name}' expected an input of rank >= 2 (batch, ...), "
                f"got shape {input_shape}"
            )
        dims = input_shape[1:].as_list()
        features = None if None in dims else math.prod(dims)
        return tf.TensorShape([input_shape[0], features])

    def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
        if is_symbolic(inputs):  # a functional model being wired: connect, compute nothing
            return connect(self, inputs)
        inputs = tf.convert_to_tensor(inputs)
        output_shape = self.compute_output_shape(inputs.shape)
        # -1 lets the batch size be read at run time; the feature size is static when known.
        features = output_shape[1] if output_shape[1] is not None else -1
        with self.name_scope:  # ops named 'flatten/Reshape': graphs read as layers
            if features == -1:
                features = tf.reduce_prod(tf.shape(inputs)[1:])
            return tf.reshape(inputs, [-1, features])  # [batch, d1 * ... * dk]

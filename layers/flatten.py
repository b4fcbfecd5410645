"""Flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...), and back for the gradient."""

import math

import tensorflow as tf

from layers.layer import Layer


class Flatten(Layer):
    """Turns each example into a vector, keeping the batch axis (which may be unknown).

    An image batch [batch, 28, 28] becomes [batch, 784], the input a Dense layer expects.
    As in Keras, a batch of scalars [batch] becomes [batch, 1]. No variables. Keras's
    `data_format="channels_first"` is left out on purpose: the engine's images are channels-last.
    """

    min_rank = 1

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        """(batch, d1, ..., dk) -> (batch, d1 * ... * dk); the product is None if any d is
        (and 1 for k = 0, the empty product)."""
        input_shape = tf.TensorShape(input_shape)
        self.check_input_shape(input_shape)
        dims = input_shape[1:].as_list()
        features = None if None in dims else math.prod(dims)
        return tf.TensorShape([input_shape[0], features])

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        dims = inputs.shape[1:].as_list()
        # -1 lets the batch size be read at run time; the feature size is static when known.
        features = tf.reduce_prod(tf.shape(inputs)[1:]) if None in dims else math.prod(dims)
        return tf.reshape(inputs, [-1, features])  # [batch, d1 * ... * dk]

    def backward(self, kept, d_outputs: tf.Tensor):
        """A reshape moves no number, so its derivative is the reshape back: dL/dx = reshape(dL/dy, shape of x)."""
        inputs = kept[0]
        return tf.reshape(d_outputs, tf.shape(inputs)), []  # [batch, d1, ..., dk]; no variables

"""Layer: what every layer shares, so that each layer's own code is its math.

Sonnet's `snt.Module` carries a module's name and its once-only variable creation; Keras's
`Layer.__call__` adds build-on-first-call, input casting and shape checks. This base does
those, and nothing else, in one short `__call__`:

    symbols (a functional model being wired)  -> connect: build, check, return a new Symbol
    real values -> as tensors (floats cast to float32, as Keras's autocast does)
                -> build once from the input shape (`build`, written by the subclass)
                -> check the input against what the layer was built for
                -> `call(inputs)`, the math, inside the layer's name scope

The name scope makes the ops read as layers in a graph ('dense_1/MatMul', engine/tour).
"""

import re
from typing import Optional

import tensorflow as tf

from layers import naming
from layers.functional import connect, is_symbolic


class Layer(tf.Module):
    """Base of `Dense`, `Flatten`, `Add`, `Concatenate`. Subclasses write `call` (the math),
    `compute_output_shape`, and `build` if they own variables.

    The accepted inputs are Keras's `InputSpec`, reduced to what these layers need: a rank
    of at least `min_rank` (a class attribute) and, once built, `input_last_dim`, the size
    of the last axis the variables were made for (Dense: `in`), or None for any.
    """

    min_rank = 0
    casts_integers = False  # Dense casts int inputs too (its matmul needs floats), as Keras does

    def __init__(self, name: Optional[str] = None):
        # Keras's default names: the snake_case of the class, numbered: 'dense', 'dense_1', ...
        super().__init__(name=name or naming.unique_name(re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()))
        self.built = False
        self.input_last_dim: Optional[int] = None

    def build(self, input_shape) -> None:
        """Creates the layer's variables for `input_shape`; the base has none to create."""
        self.built = True

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs): its math")

    def __call__(self, inputs):
        if is_symbolic(inputs):  # a functional model being wired: connect, compute nothing
            return connect(self, inputs)
        if isinstance(inputs, (list, tuple)):
            inputs = [self._as_tensor(x) for x in inputs]
            self.prepare([x.shape for x in inputs])
        else:
            inputs = self._as_tensor(inputs)
            self.prepare(inputs.shape)
        with self.name_scope:  # ops named 'dense_1/MatMul', ...: graphs read as layers
            return self.call(inputs)

    def prepare(self, input_shape) -> None:
        """Builds the layer once, then checks that `input_shape` is one it accepts."""
        if not self.built:
            self.build(input_shape)
        self.check_input_shape(input_shape)

    def check_input_shape(self, shape: tf.TensorShape) -> None:
        """Raises ValueError, naming both shapes, unless `shape` fits `min_rank` and `input_last_dim`.

        An unknown size (None, as in a symbol's batch axis) fits any expected size, as in Keras.
        """
        rank, last = shape.rank, self.input_last_dim
        if rank is not None and rank >= self.min_rank and (last is None or shape[-1] in (None, last)):
            return
        expected = "" if last is None else f" of shape (batch, ..., {last})"
        raise ValueError(f"{type(self).__name__} '{self.name}' expected inputs of rank >= {self.min_rank}"
                         f"{expected}, got shape {shape}")

    def _as_tensor(self, value) -> tf.Tensor:
        value = tf.convert_to_tensor(value)
        if value.dtype != tf.float32 and (value.dtype.is_floating or self.casts_integers):
            value = tf.cast(value, tf.float32)  # float16/float64 NumPy arrays, as Keras's autocast
        return value

"""Merge layers: where branches of a functional model meet. `Add` and `Concatenate`, as in Keras.

A skip (residual) connection is `Add()([x, f(x)])`: the block only has to learn the change
f(x) to its input, and the gradient reaches x directly through the sum (d(x + f(x))/dx = 1 +
f'(x)), however deep f is. `Concatenate` instead keeps both branches side by side.

Their backward rules route the gradient: `Add` hands its whole upstream gradient to every
input, `Concatenate` hands each input its own slice of it.
"""

import functools
from typing import Optional, Sequence

import tensorflow as tf

from layers.layer import Layer


def _check_list(layer: tf.Module, items) -> list:
    """`items` (inputs or their shapes) as a list; merging needs at least two."""
    if not isinstance(items, (list, tuple)) or len(items) < 2:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expected a list of at least 2 inputs, got {items!r}")
    return list(items)


class _Merge(Layer):
    """A layer called on a list of tensors; its shape check is its `compute_output_shape`."""

    def check_input_shape(self, shapes: Sequence[tf.TensorShape]) -> None:
        self.compute_output_shape(shapes)


class Add(_Merge):
    """Element-wise sum of its inputs, all of one shape: `outputs = x_1 + x_2 + ... + x_n`.

    Added left to right, one `tf.add` at a time, as keras.layers.Add does (so the float32
    rounding is the same). No variables.
    """

    def compute_output_shape(self, input_shapes: Sequence[tf.TensorShape]) -> tf.TensorShape:
        shapes = [tf.TensorShape(shape) for shape in _check_list(self, input_shapes)]
        if not all(shape.is_compatible_with(shapes[0]) for shape in shapes):
            raise ValueError(f"Add '{self.name}' expected inputs of one shape, got shapes {[str(s) for s in shapes]}")
        return functools.reduce(tf.TensorShape.merge_with, shapes)

    def call(self, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
        return functools.reduce(tf.add, inputs)

    def backward(self, kept, d_outputs: tf.Tensor):
        """d(x_1 + ... + x_n)/dx_i = 1: every input receives the whole upstream gradient."""
        return [d_outputs for _ in kept[0]], []


class Concatenate(_Merge):
    """Joins its inputs along `axis` (default: the last, the features): shapes [b, m] and [b, n]
    give [b, m + n]. All other dimensions must agree. No variables."""

    def __init__(self, axis: int = -1, name: Optional[str] = None, dtype: str = "float32"):
        super().__init__(name=name, dtype=dtype)
        self.axis = axis

    def compute_output_shape(self, input_shapes: Sequence[tf.TensorShape]) -> tf.TensorShape:
        shapes = [tf.TensorShape(shape) for shape in _check_list(self, input_shapes)]
        dims = [shape.as_list() for shape in shapes]
        axis = self.axis % len(dims[0])
        others = [d[:axis] + d[axis + 1:] for d in dims]
        if any(len(d) != len(dims[0]) for d in dims) or not all(
                tf.TensorShape(o).is_compatible_with(others[0]) for o in others):
            raise ValueError(f"Concatenate '{self.name}' expected shapes that differ only on axis {self.axis}, "
                             f"got shapes {[str(s) for s in shapes]}")
        joined = None if any(d[axis] is None for d in dims) else sum(d[axis] for d in dims)
        merged = functools.reduce(tf.TensorShape.merge_with, [tf.TensorShape(o) for o in others]).as_list()
        return tf.TensorShape(merged[:axis] + [joined] + merged[axis:])

    def call(self, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.concat(inputs, axis=self.axis)

    def backward(self, kept, d_outputs: tf.Tensor):
        """Each input's slice of the upstream gradient: split dL/dy along `axis` at the inputs' sizes."""
        sizes = [tf.shape(x)[self.axis] for x in kept[0]]
        return tf.split(d_outputs, sizes, axis=self.axis), []

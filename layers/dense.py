"""Dense: the fully connected layer, `outputs = activation(inputs @ kernel + bias)`.

Shapes: inputs [batch, in], kernel [in, units], bias [units], outputs [batch, units]. As in
Keras, inputs of higher rank [batch, ..., in] (say [batch, time, features]) are mapped on
their last axis: every position gets the same kernel, giving [batch, ..., units].
Every output unit is a weighted sum of every input feature plus its own offset, then a
nonlinearity. Stacking such layers with a nonlinearity in between is the multilayer
perceptron; without it, the stack would collapse into a single linear map.

How it learns. With `tf.GradientTape` (the default), the tape records the matmul, the add and
the activation, and differentiates them. With manual gradients (`Trainer(gradients="manual")`)
the step calls `backward`, below `call`: for `y = f(z)`, `z = x @ W + b` and the gradient
dL/dy arriving from the layer above,

    delta = dL/dz = f'(z) * dL/dy        (the activation's rule, engine/activations.py; relu: the mask)
    dL/dW = x^T @ delta                  [in, batch] @ [batch, units] -> [in, units]
    dL/db = sum over the batch of delta  [units]
    dL/dx = delta @ W^T                  [batch, units] @ [units, in] -> [batch, in], for the layer below

The forward pass keeps x and y for it (`Layer.forward`). As the output layer of a classifier
the step starts at delta itself, (softmax(z) - onehot(y)) / batch (`backward_logits`).
"""

import numbers
from typing import Callable, Optional, Union

import tensorflow as tf

from engine import activations, initializers
from layers.layer import Layer


class Dense(Layer):
    """A fully connected layer with Keras's argument names.

    Variables are created on the first call (or an explicit `build`), from the input's last
    dimension, as Keras's `build` does: `kernel` (in, units) and `bias` (units,), or
    `bias = None` with `use_bias=False`. Inputs are cast to the layer's dtype (float32 unless
    `dtype=` says otherwise), as Keras does; naming, build and shape checks are `Layer`'s.
    `seed` fixes the kernel's initial values; None draws one from TensorFlow's global seed.
    Keras's regularizers, constraints, LoRA and quantization are left out on purpose: none is
    part of the layer's math, and the training step adds no penalty terms.

    Example:
      >>> layer = Dense(3, activation="relu")
      >>> layer(tf.ones([2, 4])).shape
      TensorShape([2, 3])
      >>> [v.name for v in layer.trainable_variables]
      ['dense/kernel:0', 'dense/bias:0']
    """

    min_rank = 2  # (batch, ..., features)
    casts_integers = True

    def __init__(
        self,
        units: int,
        activation: Union[None, str, Callable] = None,
        use_bias: bool = True,
        kernel_initializer: Union[str, Callable] = "glorot_uniform",
        bias_initializer: Union[str, Callable] = "zeros",
        name: Optional[str] = None,
        seed: Optional[int] = None,
        dtype: str = "float32",
    ):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(units, numbers.Integral) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense '{self.name}' expected units to be a positive integer, got {units!r}")
        self.units = int(units)  # np.int64(3) too, as Keras takes it
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.seed = seed

    @property
    def activation(self) -> Callable:
        return self._activation

    @activation.setter
    def activation(self, identifier: Union[None, str, Callable]) -> None:
        """Resolved on assignment too, so `layer.activation = None` means linear, as in Keras."""
        self._activation = activations.get(identifier)

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates `kernel` and `bias` for inputs of shape (batch, ..., in).

        Raises:
          ValueError: if the input's rank is below 2 or its last dimension is unknown.
        """
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank is None or input_shape.rank < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Dense '{self.name}' expected inputs of shape (batch, ..., features) with a known "
                f"features dimension, got shape {input_shape}"
            )
        self.input_last_dim = int(input_shape[-1])
        with tf.init_scope(), self.name_scope:  # variables are created once, eagerly
            if self.seed is None:
                # Like Keras: without an explicit seed, draw one from TensorFlow's global seed,
                # so `tf.random.set_seed(s)` makes the model reproducible and layers differ.
                self.seed = int(tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64))
            self.kernel = tf.Variable(
                self.kernel_initializer([self.input_last_dim, self.units], self.dtype, self.seed),
                name="kernel",
            )
            self.bias = tf.Variable(
                self.bias_initializer([self.units], self.dtype, self.seed), name="bias"
            ) if self.use_bias else None
        self.built = True

    @property
    def trainable_variables(self) -> tuple:
        """(kernel, bias) in that order — tf.Module's default walk is alphabetical (bias first)."""
        if not self.built:
            return ()
        return (self.kernel, self.bias) if self.use_bias else (self.kernel,)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units])

    @property
    def output_activation(self) -> Callable:
        return self._activation

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.activation(self.pre_activation(inputs))  # [batch, ..., units]

    def pre_activation(self, inputs: tf.Tensor) -> tf.Tensor:
        """z = x @ kernel + bias: the layer before its activation (the logits of an output layer)."""
        outputs = tf.matmul(inputs, self.computed(self.kernel))  # [batch, ..., in] @ [in, units] -> [batch, ..., units]
        if self.use_bias:
            outputs = outputs + self.computed(self.bias)  # bias [units] broadcasts over the batch
        return outputs

    def backward(self, kept, d_outputs: tf.Tensor):
        """dL/dz = f'(z) * dL/dy from the activation's rule (it needs only y), then `backward_logits`."""
        outputs = kept[1]
        with tf.name_scope(self.name):
            d_logits = activations.backward(self.activation)(outputs, d_outputs)  # [batch, ..., units]
        return self.backward_logits(kept, d_logits)

    def backward_logits(self, kept, d_logits: tf.Tensor):
        """From delta = dL/dz: dW = x^T delta, db = sum delta, dx = delta W^T (module docstring)."""
        inputs = kept[0]
        with tf.name_scope(self.name):
            d_logits = tf.cast(d_logits, self.compute_dtype)  # the loss's float32 delta, under mixed_bfloat16
            # Rank > 2 inputs ([batch, time, in]) share one kernel: their positions add up like more examples.
            x = tf.reshape(inputs, [-1, self.input_last_dim])  # [examples, in]
            delta = tf.reshape(d_logits, [-1, self.units])  # [examples, units]
            d_kernel = tf.matmul(x, delta, transpose_a=True)  # [in, examples] @ [examples, units] -> [in, units]
            d_inputs = tf.matmul(d_logits, self.computed(self.kernel), transpose_b=True)  # [..., units] @ [units, in]
            d_variables = [d_kernel, tf.reduce_sum(delta, axis=0)] if self.use_bias else [d_kernel]  # db: [units]
        return d_inputs, [tf.cast(d, self.dtype) for d in d_variables]  # updates in the variables' dtype

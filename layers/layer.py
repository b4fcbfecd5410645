"""Layer: what every layer shares, so that each layer's own code is its math and its derivative.

Sonnet's `snt.Module` carries a module's name and its once-only variable creation; Keras's
`Layer.__call__` adds build-on-first-call, input casting and shape checks. This base does
those, and nothing else:

    symbols (a functional model being wired)  -> connect: build, check, return a new Symbol
    real values -> as tensors (floats cast to the layer's dtype, as Keras's autocast does)
                -> build once from the input shape (`build`, written by the subclass)
                -> check the input against what the layer was built for
                -> `call(inputs)`, the math, inside the layer's name scope

The backward pass, by hand, is a method beside the forward one, as micrograd's `_backward`
stands beside each op and CS231n's `layers.py` pairs `affine_forward` with `affine_backward`:
the rule lives with the math it differentiates, where a reader of the layer finds both.

    outputs, kept = layer.forward(inputs)        # kept: what backward needs, (inputs, outputs)
    d_inputs, d_variables = layer.backward(kept, d_outputs)

`d_variables` lists dL/dv for each of `trainable_variables`, in that order. A container
(Sequential, Model) chains its layers' rules: it is the chain rule, layer by layer, in reverse.

Logits. A model's output layer may end in an activation the loss wants to skip (a softmax
before a cross-entropy: `engine.losses.output_loss`). So a layer also gives its output before
its activation, `pre_activation` (Dense: `x @ W + b`), and names that activation,
`output_activation`; `forward_logits` and `backward_logits` are `forward` and `backward` for
it. For a layer without an activation they are the same thing.

The name scope makes the ops read as layers in a graph ('dense_1/MatMul', engine/tour).
"""

import re
from typing import List, Optional, Tuple

import tensorflow as tf

from engine import activations
from layers import naming
from layers.functional import connect, is_symbolic


# Keras's mixed-precision policy names: (variable dtype, compute dtype).
MIXED_POLICIES = {"mixed_bfloat16": ("float32", "bfloat16")}


class Layer(tf.Module):
    """Base of `Dense`, `Flatten`, `Add`, `Concatenate` and the containers. Subclasses write `call`
    (the math), `backward` (its derivative), `compute_output_shape`, and `build` if they own variables.

    The accepted inputs are Keras's `InputSpec`, reduced to what these layers need: a rank
    of at least `min_rank` (a class attribute) and, once built, `input_last_dim`, the size
    of the last axis the variables were made for (Dense: `in`), or None for any.

    `dtype` is the variables' and the computation's dtype, as Keras's `dtype=` (float32 by
    default; float64 for a numerical gradient check, `engine.gradient_check`), or Keras's mixed
    precision policy "mixed_bfloat16": float32 variables (`dtype`, so the optimizer's small
    updates keep their digits) and bfloat16 computation (`compute_dtype`: inputs and weights
    cast on the way in, where bfloat16 matmuls run 2x or more faster on CPUs with AMX or
    AVX512_BF16); the loss scores bfloat16 outputs in float32 (`engine.losses`). "mixed_float16"
    is refused: float16's 5 exponent bits make small gradients underflow without loss scaling,
    which the engine does not have.
    """

    min_rank = 0
    casts_integers = False  # Dense casts int inputs too (its matmul needs floats), as Keras does

    def __init__(self, name: Optional[str] = None, dtype: str = "float32"):
        # Keras's default names: the snake_case of the class, numbered: 'dense', 'dense_1', ...
        super().__init__(name=name or naming.unique_name(re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()))
        if dtype == "mixed_float16":
            raise ValueError(f"{type(self).__name__} '{self.name}': mixed_float16 needs loss scaling, which the "
                             "engine does not have; use 'mixed_bfloat16' (bfloat16 has float32's range)")
        variable_dtype, compute_dtype = MIXED_POLICIES.get(dtype, (dtype, dtype))
        self.dtype, self.compute_dtype = tf.as_dtype(variable_dtype), tf.as_dtype(compute_dtype)
        if not self.dtype.is_floating:
            raise ValueError(f"{type(self).__name__} '{self.name}' expected a floating dtype or 'mixed_bfloat16', "
                             f"got {dtype!r}")
        self.dtype_policy = str(dtype) if dtype in MIXED_POLICIES else self.dtype.name
        self.built = False
        self.input_last_dim: Optional[int] = None

    def build(self, input_shape) -> None:
        """Creates the layer's variables for `input_shape`; the base has none to create."""
        self.built = True

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs): its math")

    def pre_activation(self, inputs):
        """The output before `output_activation`; a layer without an activation: `call`."""
        return self.call(inputs)

    @property
    def output_activation(self) -> activations.Activation:
        """The activation `call` applies to `pre_activation` (linear: none)."""
        return activations.linear

    def backward(self, kept, d_outputs) -> Tuple[object, List[tf.Tensor]]:
        """(dL/dinputs, [dL/dv for v in trainable_variables]) from dL/doutputs and what `forward` kept."""
        raise NotImplementedError(f"{type(self).__name__} '{self.name}' has no backward rule")

    def backward_logits(self, kept, d_logits) -> Tuple[object, List[tf.Tensor]]:
        """`backward` from dL/d(pre_activation); without an activation, `backward` itself."""
        return self.backward(kept, d_logits)

    def missing_backward(self) -> Optional[str]:
        """Why manual gradients cannot run through this layer (no backward rule), or None."""
        if type(self).backward is Layer.backward:
            return f"{type(self).__name__} '{self.name}' has no backward rule (define backward(kept, d_outputs))"
        if activations.backward(self.output_activation) is None:
            name = getattr(self.output_activation, "__name__", repr(self.output_activation))
            return (f"{type(self).__name__} '{self.name}' has activation {name!r}, which has no backward rule in "
                    "engine.activations.BACKWARD")
        return None

    def __call__(self, inputs):
        if is_symbolic(inputs):  # a functional model being wired: connect, compute nothing
            return connect(self, inputs)
        return self.forward(inputs)[0]

    def forward(self, inputs):
        """`(outputs, kept)`: the forward pass, and what `backward` needs of it, `(inputs, outputs)`."""
        inputs = self._prepared(inputs)
        with self.name_scope:  # ops named 'dense_1/MatMul', ...: graphs read as layers
            outputs = self.call(inputs)
        return outputs, (inputs, outputs)

    def forward_logits(self, inputs):
        """`(logits, kept)`: `forward` up to `pre_activation`, for `backward_logits`."""
        inputs = self._prepared(inputs)
        with self.name_scope:
            logits = self.pre_activation(inputs)
        return logits, (inputs, logits)

    def logits(self, inputs):
        """The output before `output_activation`: `output_activation(layer.logits(x))` is `layer(x)`."""
        return self.forward_logits(inputs)[0]

    def _prepared(self, inputs):
        """The inputs as tensors of the layer's dtype, the layer built and the shapes checked."""
        if isinstance(inputs, (list, tuple)):
            inputs = [self._as_tensor(x) for x in inputs]
            self.prepare([x.shape for x in inputs])
        else:
            inputs = self._as_tensor(inputs)
            self.prepare(inputs.shape)
        return inputs

    def prepare(self, input_shape) -> None:
        """Builds the layer once, then checks that `input_shape` is one it accepts."""
        if not self.built:
            self.build(input_shape)
        self.check_input_shape(input_shape)

    def check_input_shape(self, shape: tf.TensorShape) -> None:
        """Raises ValueError, naming both shapes, unless `shape` fits `min_rank` and `input_last_dim`.

        An unknown size (None, as in a symbol's batch axis) fits any expected size, as in Keras.
        """
        shape = tf.TensorShape(shape)
        rank, last = shape.rank, self.input_last_dim
        if rank is not None and rank >= self.min_rank and (last is None or shape[-1] in (None, last)):
            return
        expected = "" if last is None else f" of shape (batch, ..., {last})"
        raise ValueError(f"{type(self).__name__} '{self.name}' expected inputs of rank >= {self.min_rank}"
                         f"{expected}, got shape {shape}")

    def _as_tensor(self, value) -> tf.Tensor:
        value = tf.convert_to_tensor(value)
        if value.dtype != self.compute_dtype and (value.dtype.is_floating or self.casts_integers):
            value = tf.cast(value, self.compute_dtype)  # float16/float64 NumPy arrays, as Keras's autocast
        return value

    def computed(self, variable: tf.Variable) -> tf.Tensor:
        """`variable` in the compute dtype: itself, or its bfloat16 copy under "mixed_bfloat16" (the
        gradient of the cast casts dL/dv back to float32, so the update is made in float32)."""
        return variable if variable.dtype == self.compute_dtype else tf.cast(variable, self.compute_dtype)

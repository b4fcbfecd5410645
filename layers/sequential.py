"""Sequential: a model that is a plain stack of layers, each feeding the next."""

from typing import Callable, List, Optional, Sequence

import tensorflow as tf

from layers import naming
from layers.functional import Symbol
from layers.summary import print_summary


class Sequential(tf.Module):
    """Calls its layers in order: `model(x) = layer_n(... layer_2(layer_1(x)))`.

    Example (the reference MNIST model):
      >>> model = Sequential()
      >>> model.add(Flatten())
      >>> model.add(Dense(256, activation="relu"))
      >>> model.add(Dense(128, activation="relu"))
      >>> model.add(Dense(10, activation="softmax"))
      >>> model.build((None, 28, 28))
      >>> model.count_params()
      235146

    As in Keras, `Sequential([Input((28, 28)), Flatten(), ...])` fixes the input shape first
    and builds each layer as it is added.
    """

    def __init__(self, layers: Optional[Sequence[tf.Module]] = None, name: Optional[str] = None):
        super().__init__(name=name or naming.unique_name("sequential"))
        self.layers: List[tf.Module] = []
        self.input_shape: Optional[tf.TensorShape] = None
        for layer in layers or ():
            self.add(layer)

    def add(self, layer: tf.Module) -> None:
        """Appends a layer (any callable `tf.Module`) to the top of the stack, or, first of all,
        an `Input`, which sets the input shape.

        Raises:
          ValueError: for a non-callable, a second Input (or one after layers), or a name
            already in the stack (Keras's errors: names identify layers in summaries).
        """
        if isinstance(layer, Symbol) and layer.layer is None:
            if self.layers or self.built:
                raise ValueError(f"Sequential '{self.name}' has already been configured: an Input "
                                 f"must come first and once, got {layer!r}")
            self.input_shape = layer.shape
            return
        if not callable(layer) or isinstance(layer, Symbol):
            raise ValueError(f"Sequential '{self.name}' can only add callable layers, got {layer!r}")
        if any(layer.name == other.name for other in self.layers):
            raise ValueError(f"Sequential '{self.name}' layers should have unique names, '{layer.name}' is taken")
        self.layers.append(layer)
        if self.built:
            self.build(self.input_shape)  # builds the new layer now, for the shape below it

    def pop(self) -> tf.Module:
        """Removes and returns the top layer, as Keras's `pop`."""
        if not self.layers:
            raise ValueError(f"Sequential '{self.name}' has no layers to pop")
        return self.layers.pop()

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Creates every layer's variables for inputs of `input_shape`, computing nothing.

        `input_shape` includes the batch axis, which may be None: `(None, 28, 28)`. Each
        layer is built from the output shape of the one below it, as Keras does. Once built, a
        compatible shape (a batch size for None) is accepted where Keras requires the same one,
        on purpose: no layer here depends on the batch size.
        """
        shape = tf.TensorShape(input_shape)
        if shape.rank is None or shape.rank < 2:
            raise ValueError(f"Sequential '{self.name}' expected an input shape (batch, ...), got {shape}")
        if self.built and not self.input_shape.is_compatible_with(shape):
            raise ValueError(f"Sequential '{self.name}' has already been configured with input shape "
                             f"{self.input_shape}, got {shape}")
        self.input_shape = tf.TensorShape([None]).concatenate(shape[1:])
        for layer in self.layers:
            if hasattr(layer, "prepare"):
                layer.prepare(shape)  # builds once; a layer built for other inputs raises
            elif hasattr(layer, "build") and not getattr(layer, "built", True):
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
        if not self.layers:
            raise ValueError(f"Sequential '{self.name}' has no layers: add() some before calling it")
        inputs = tf.convert_to_tensor(inputs)
        if self.input_shape is None:
            self.input_shape = tf.TensorShape([None]).concatenate(inputs.shape[1:])
        elif not self.input_shape[1:].is_compatible_with(inputs.shape[1:]) or inputs.shape.rank != self.input_shape.rank:
            raise ValueError(
                f"Sequential '{self.name}' expected inputs of shape {self.input_shape}, "
                f"got shape {inputs.shape}"
            )
        outputs = inputs
        for layer in self.layers:
            outputs = layer(outputs)
        return outputs

    @property
    def trainable_variables(self) -> tuple:
        """Every layer's variables in layer order, kernel before bias within a layer.

        Overridden because tf.Module's default collects attributes alphabetically, which
        would put each bias before its kernel and break the one-to-one match with Keras's
        `model.trainable_variables` (and with saved weight lists).
        """
        return tuple(v for layer in self.layers for v in layer.trainable_variables)

    def count_params(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self.trainable_variables)

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Prints each layer's name, type, output shape and parameter count, like Keras."""
        if not self.built:
            raise ValueError(f"Sequential '{self.name}' is not built: call build(input_shape) or the model first")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            params = sum(int(v.shape.num_elements()) for v in layer.trainable_variables)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(tuple(shape.as_list())), f"{params:,}"))
        print_summary(self.name, rows, self.count_params(), print_fn)

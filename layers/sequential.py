"""Sequential: a model that is a plain stack of layers, each feeding the next — and, for manual
gradients, each handing its gradient back to the one below, in reverse order."""

from typing import List, Optional, Sequence

import tensorflow as tf

from layers import naming
from layers.activation import Activation
from layers.container import Container, layer_kind, parameters
from layers.functional import Symbol
from layers.layer import Layer


class Sequential(Container):
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
    and builds each layer as it is added. A plain function (`activations.relu`) is a layer too
    (`Activation`), and so is another Sequential or Model.

    Its backward pass is the chain rule in reverse order: with h_0 = x, h_k = layer_k(h_{k-1}),

        dL/dh_{k-1}, dL/d(variables of layer k) = layer_k.backward(kept_k, dL/dh_k),  k = n, ..., 1
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, name: Optional[str] = None):
        super().__init__(name=name or naming.unique_name("sequential"))
        self.input_shape: Optional[tf.TensorShape] = None
        for layer in layers or ():
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Appends a layer to the top of the stack (a plain function becomes an `Activation`), or, first
        of all, an `Input`, which sets the input shape.

        Raises:
          ValueError: for what is not a layer or a function, a second Input (or one after layers), or a
            name already in the stack (Keras's errors: names identify layers in summaries).
        """
        if isinstance(layer, Symbol) and layer.layer is None:
            if self.layers or self.built:
                raise ValueError(f"Sequential '{self.name}' has already been configured: an Input "
                                 f"must come first and once, got {layer!r}")
            self.input_shape = layer.shape
            self.built = True
            return
        if callable(layer) and not isinstance(layer, (tf.Module, Symbol)):
            layer = Activation(layer)
        if not isinstance(layer, Layer):
            raise ValueError(f"Sequential '{self.name}' can only add callable layers (layers.Layer) or functions, "
                             f"got {layer!r}")
        if any(layer.name == other.name for other in self.layers):
            raise ValueError(f"Sequential '{self.name}' layers should have unique names, '{layer.name}' is taken")
        self.layers.append(layer)
        if self.built:
            self.build(self.input_shape)  # builds the new layer now, for the shape below it

    def pop(self) -> Layer:
        """Removes and returns the top layer, as Keras's `pop`."""
        if not self.layers:
            raise ValueError(f"Sequential '{self.name}' has no layers to pop")
        return self.layers.pop()

    @property
    def output_layer(self) -> Layer:
        if not self.layers:
            raise ValueError(f"Sequential '{self.name}' has no layers: add() some before calling it")
        return self.layers[-1]

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
        if self.input_shape is not None and not self.input_shape.is_compatible_with(shape):
            raise ValueError(f"Sequential '{self.name}' has already been configured with input shape "
                             f"{self.input_shape}, got {shape}")
        self.input_shape = tf.TensorShape([None]).concatenate(shape[1:])
        self.built = True
        for layer in self.layers:
            layer.prepare(shape)  # builds once; a layer built for other inputs raises
            shape = layer.compute_output_shape(shape)

    def compute_output_shape(self, input_shape) -> tf.TensorShape:
        shape = tf.TensorShape(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def forward(self, inputs: tf.Tensor):
        """(outputs, kept): each layer's forward in order, and what each kept for its backward."""
        outputs, kept = self._checked(inputs), []
        for layer in self.layers:
            outputs, layer_kept = layer.forward(outputs)
            kept.append(layer_kept)
        return outputs, kept

    def forward_logits(self, inputs: tf.Tensor):
        """`forward`, with the top layer stopped before its activation: (logits, kept)."""
        outputs, kept = self._checked(inputs), []
        for layer in self.layers[:-1]:
            outputs, layer_kept = layer.forward(outputs)
            kept.append(layer_kept)
        logits, layer_kept = self.output_layer.forward_logits(outputs)
        return logits, kept + [layer_kept]

    def backward(self, kept: List, d_outputs: tf.Tensor):
        return self._backward(kept, self.output_layer.backward(kept[-1], d_outputs))

    def backward_logits(self, kept: List, d_logits: tf.Tensor):
        return self._backward(kept, self.output_layer.backward_logits(kept[-1], d_logits))

    def _backward(self, kept: List, top: tuple):
        """The chain rule down the stack, from the top layer's (d_inputs, d_variables) `top`."""
        upstream, d_variables = top
        gradients = [d_variables]
        for layer, layer_kept in zip(reversed(self.layers[:-1]), reversed(kept[:-1])):
            upstream, d_variables = layer.backward(layer_kept, upstream)  # dL/d(its inputs) feeds the layer below
            gradients.insert(0, d_variables)
        return upstream, [d for layer_gradients in gradients for d in layer_gradients]

    def _checked(self, inputs) -> tf.Tensor:
        """The inputs as a tensor, checked against (or, on a first call, fixing) the input shape."""
        if not self.layers:
            raise ValueError(f"Sequential '{self.name}' has no layers: add() some before calling it")
        inputs = tf.convert_to_tensor(inputs)
        if self.input_shape is None:
            self.build(inputs.shape)
        self.check_input_shape(inputs.shape)
        return inputs

    def check_input_shape(self, shape) -> None:
        """Raises ValueError, naming both shapes, unless `shape` fits the input shape the stack was built for."""
        shape = tf.TensorShape(shape)
        if shape.rank != self.input_shape.rank or not self.input_shape[1:].is_compatible_with(shape[1:]):
            raise ValueError(f"Sequential '{self.name}' expected inputs of shape {self.input_shape}, got shape {shape}")

    def summary_rows(self):
        if not self.built:
            raise ValueError(f"Sequential '{self.name}' is not built: call build(input_shape) or the model first")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            rows.append((layer_kind(layer), str(tuple(shape.as_list())), f"{parameters(layer):,}"))
        return rows

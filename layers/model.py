"""Model: a graph of layers, from `Input` symbols to output symbols (see layers/functional.py)."""

from typing import Callable, Dict, List, Optional, Sequence, Union

import tensorflow as tf

from layers import naming
from layers.functional import Symbol, as_symbols, topological_order
from layers.summary import print_summary

Tensors = Union[tf.Tensor, Sequence[tf.Tensor]]


class Model(tf.Module):
    """Runs the layers between `inputs` and `outputs`, each once its inputs are computed.

    Works wherever a `Sequential` does (`engine.training.Trainer`, the parity checks): it is
    built on construction (its layers were built when connected), and `trainable_variables`
    lists each layer's (kernel, bias) in topological order, each shared layer once.

    Example (a skip connection):
      >>> inputs = Input((8,))
      >>> hidden = Dense(4, activation="relu")(inputs)
      >>> model = Model(inputs, Add()([hidden, Dense(4)(hidden)]))
      >>> model(tf.ones([2, 8])).shape
      TensorShape([2, 4])
    """

    def __init__(self, inputs: Union[Symbol, Sequence[Symbol]], outputs: Union[Symbol, Sequence[Symbol]],
                 name: Optional[str] = None):
        super().__init__(name=name or naming.unique_name("model"))
        self.inputs, self.outputs = as_symbols(inputs, "inputs"), as_symbols(outputs, "outputs")
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        if any(x.layer is not None for x in self.inputs):
            raise ValueError(f"Model '{self.name}' inputs must come from Input(...), got {self.inputs}")
        self.nodes = topological_order(self.outputs)
        missing = [x for x in self.nodes if x.layer is None and all(x is not i for i in self.inputs)]
        if missing:
            raise ValueError(f"Model '{self.name}' outputs depend on {missing}, which is not among its "
                             f"inputs {self.inputs}: pass every Input the outputs are computed from")
        self.layers: List[tf.Module] = []
        for node in self.nodes:
            if node.layer is not None and all(node.layer is not layer for layer in self.layers):
                self.layers.append(node.layer)
        self.input_shape = self.inputs[0].shape
        self.built = True

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Nothing to create (connecting built every layer); checks `input_shape` fits the Input."""
        self._check_shape(tf.TensorShape(input_shape), self.inputs[0])

    def _check_shape(self, shape: tf.TensorShape, symbol: Symbol) -> None:
        if shape.rank != symbol.shape.rank or not symbol.shape[1:].is_compatible_with(shape[1:]):
            raise ValueError(f"Model '{self.name}' expected inputs of shape {symbol.shape} for "
                             f"'{symbol.name}', got shape {shape}")

    def __call__(self, inputs: Tensors) -> Tensors:
        outputs = self.layer_outputs(inputs)
        results = [outputs[id(x)] for x in self.outputs]
        return results[0] if self._single_output else results

    def layer_outputs(self, inputs: Tensors) -> Dict[int, tf.Tensor]:
        """Every node's value for `inputs`, keyed by `id(symbol)`: the forward pass, in order."""
        inputs = [inputs] if self._single_input else list(inputs)
        if len(inputs) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' expected {len(self.inputs)} inputs, got {len(inputs)}")
        values = {}
        for symbol, tensor in zip(self.inputs, inputs):
            tensor = tf.convert_to_tensor(tensor)
            self._check_shape(tensor.shape, symbol)
            values[id(symbol)] = tensor
        for node in self.nodes:
            if node.layer is not None:
                arguments = [values[id(x)] for x in node.inputs]
                values[id(node)] = node.layer(arguments if node.listed else arguments[0])
        return values

    @property
    def trainable_variables(self) -> tuple:
        """Each layer's variables (kernel before bias), layers in topological order.

        Overridden, as in `Sequential`, because tf.Module's alphabetical walk would not match
        the order of Keras's `model.trainable_variables`.
        """
        return tuple(v for layer in self.layers for v in layer.trainable_variables)

    def count_params(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self.trainable_variables)

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Prints each node's layer, output shape, parameters and what it is connected to, like Keras."""
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        counted = set()
        for node in self.nodes:
            layer = node.layer
            params = 0 if layer is None or id(layer) in counted else sum(
                int(v.shape.num_elements()) for v in layer.trainable_variables)
            counted.add(id(layer))
            kind = "InputLayer" if layer is None else type(layer).__name__
            rows.append((f"{node.name} ({kind})", str(tuple(node.shape.as_list())), f"{params:,}",
                         ", ".join(x.name for x in node.inputs) or "-"))
        print_summary(self.name, rows, self.count_params(), print_fn)

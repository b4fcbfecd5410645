"""Model: a graph of layers, from `Input` symbols to output symbols (see layers/functional.py).

Forward, each node runs once its inputs are computed (topological order). Backward, the nodes
run in the reverse order, so a node's upstream gradient is complete before its rule runs: a
tensor that feeds two layers (the input of a skip connection, h in h + f(h)) receives the SUM
of the gradients both send back, the multivariate chain rule dL/dh = sum over its uses.
"""

from typing import Dict, List, Optional, Sequence, Union

import tensorflow as tf

from layers import naming
from layers.container import Container, layer_kind, parameters
from layers.functional import Symbol, as_symbols, topological_order
from layers.layer import Layer

Tensors = Union[tf.Tensor, Sequence[tf.Tensor]]


class Model(Container):
    """Runs the layers between `inputs` and `outputs`, each once its inputs are computed.

    Works wherever a `Sequential` does (`engine.training.Trainer`, the parity checks, inside
    another container): it is built on construction (its layers were built when connected),
    and `trainable_variables` lists each layer's (kernel, bias) in topological order, each
    shared layer once.

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
        for node in self.nodes:
            if node.layer is not None and all(node.layer is not layer for layer in self.layers):
                self.layers.append(node.layer)
        self.input_shape = self.inputs[0].shape
        self.built = True

    @property
    def output_layer(self) -> Layer:
        if not self._single_output or self.outputs[0].layer is None:
            raise ValueError(f"Model '{self.name}' has {len(self.outputs)} outputs: a loss, and manual gradients, "
                             "need a model with one output computed by a layer")
        return self.outputs[0].layer

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Nothing to create (connecting built every layer); checks `input_shape` fits the Input."""
        self.check_input_shape(input_shape)

    def check_input_shape(self, shape) -> None:
        """Raises ValueError, naming both shapes, unless `shape` (a list of them for several inputs) fits the inputs."""
        for given, symbol in zip([shape] if self._single_input else shape, self.inputs):
            self._check_shape(tf.TensorShape(given), symbol)

    def _check_shape(self, shape: tf.TensorShape, symbol: Symbol) -> None:
        if shape.rank != symbol.shape.rank or not symbol.shape[1:].is_compatible_with(shape[1:]):
            raise ValueError(f"Model '{self.name}' expected inputs of shape {symbol.shape} for "
                             f"'{symbol.name}', got shape {shape}")

    def compute_output_shape(self, input_shape) -> tf.TensorShape:
        self.check_input_shape(input_shape)
        shapes = [x.shape for x in self.outputs]
        return shapes[0] if self._single_output else shapes

    def forward(self, inputs: Tensors):
        """(outputs, kept): every node run in order; `kept` holds each node's record for backward."""
        values, kept = self._run(inputs, logits=False)
        results = [values[id(x)] for x in self.outputs]
        return (results[0] if self._single_output else results), kept

    def forward_logits(self, inputs: Tensors):
        """`forward`, the output node stopped before its activation: (logits, kept)."""
        values, kept = self._run(inputs, logits=True)
        return values[id(self.outputs[0])], kept

    def layer_outputs(self, inputs: Tensors) -> Dict[int, tf.Tensor]:
        """Every node's value for `inputs`, keyed by `id(symbol)`: the forward pass, in order."""
        return self._run(inputs, logits=False)[0]

    def _run(self, inputs: Tensors, logits: bool):
        inputs = [inputs] if self._single_input else list(inputs)
        if len(inputs) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' expected {len(self.inputs)} inputs, got {len(inputs)}")
        values, kept = {}, {}
        for symbol, tensor in zip(self.inputs, inputs):
            tensor = tf.convert_to_tensor(tensor)
            self._check_shape(tensor.shape, symbol)
            values[id(symbol)] = tensor
        for node in self.nodes:
            if node.layer is not None:
                arguments = [values[id(x)] for x in node.inputs]
                run = node.layer.forward_logits if logits and node is self.outputs[0] else node.layer.forward
                values[id(node)], kept[id(node)] = run(arguments if node.listed else arguments[0])
        return values, kept

    def backward(self, kept: Dict, d_outputs: tf.Tensor):
        return self._backward(kept, d_outputs, logits=False)

    def backward_logits(self, kept: Dict, d_logits: tf.Tensor):
        return self._backward(kept, d_logits, logits=True)

    def _backward(self, kept: Dict, upstream: tf.Tensor, logits: bool):
        """Each node's rule in reverse topological order; gradients meeting at a tensor are summed."""
        self.output_layer  # raises for a model without a single output
        output = self.outputs[0]
        d_values = {id(output): upstream}  # dL/d(node's value), complete once every consumer has run
        d_variables: Dict[int, List[tf.Tensor]] = {}
        for node in reversed(self.nodes):
            if node.layer is None:
                continue
            rule = node.layer.backward_logits if logits and node is output else node.layer.backward
            d_inputs, d_layer = rule(kept[id(node)], d_values.pop(id(node)))
            for source, d_input in zip(node.inputs, d_inputs if node.listed else [d_inputs]):
                d_values[id(source)] = d_values[id(source)] + d_input if id(source) in d_values else d_input
            previous = d_variables.get(id(node.layer))  # a shared layer: its nodes' gradients add up
            d_variables[id(node.layer)] = d_layer if previous is None else [a + b for a, b in zip(previous, d_layer)]
        d_inputs = [d_values.get(id(x)) for x in self.inputs]
        return (d_inputs[0] if self._single_input else d_inputs), [
            d for layer in self.layers for d in d_variables[id(layer)]]

    def summary_rows(self):
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        counted = set()
        for node in self.nodes:
            layer = node.layer
            params = 0 if layer is None or id(layer) in counted else parameters(layer)
            counted.add(id(layer))
            rows.append((f"{node.name} (InputLayer)" if layer is None else layer_kind(layer),
                         str(tuple(node.shape.as_list())), f"{params:,}", ", ".join(x.name for x in node.inputs) or "-"))
        return rows

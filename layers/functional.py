"""The functional API: wire layers into any graph (branches, skips, merges) by calling them on symbols.

    inputs = Input((28, 28))
    features = Flatten()(inputs)
    hidden = Dense(64, activation="relu")(features)
    skip = Add()([hidden, Dense(64, activation="relu")(hidden)])  # a skip connection: h + f(h)
    model = Model(inputs, Dense(10, activation="softmax")(skip))

Calling a layer on a `Symbol` computes nothing. It builds the layer for the symbol's shape (so
its variables exist at once, as in a Keras functional model) and returns a new `Symbol` that
remembers the layer and the symbols it was called on: one node of a graph. `Model` walks that
graph back from its outputs, orders the nodes so that each comes after its inputs (a
topological order), and on a real call runs the layers in that order.
"""

from typing import List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from layers import naming


class Symbol:
    """A placeholder for a tensor not computed yet: its shape, and the layer call that makes it.

    `layer` is None for an `Input`. `listed` records whether the layer was called on a list
    (a merge layer) or on one symbol, so that `Model` calls it the same way with real tensors.
    """

    def __init__(self, shape: tf.TensorShape, layer: Optional[tf.Module] = None,
                 inputs: Tuple["Symbol", ...] = (), listed: bool = False, name: Optional[str] = None):
        self.shape, self.layer, self.inputs, self.listed = tf.TensorShape(shape), layer, inputs, listed
        self.name = name or layer.name

    def __repr__(self) -> str:
        return f"<Symbol '{self.name}' shape={self.shape}>"


def Input(shape: Sequence[Optional[int]], name: Optional[str] = None) -> Symbol:  # noqa: N802 (Keras's name)
    """The model's input: a symbol of shape (batch, *shape), the batch size left unknown.

    Example:
      >>> Input((28, 28)).shape
      TensorShape([None, 28, 28])
    """
    return Symbol(tf.TensorShape([None]).concatenate(shape), name=name or naming.unique_name("input"))


def is_symbolic(inputs) -> bool:
    """Whether a layer's argument is a Symbol (or a list holding one): then the layer connects."""
    if isinstance(inputs, (list, tuple)):
        return any(isinstance(x, Symbol) for x in inputs)
    return isinstance(inputs, Symbol)


def connect(layer: tf.Module, inputs: Union[Symbol, Sequence[Symbol]]) -> Symbol:
    """What calling `layer` on symbols does: build it for their shapes, check them, return its
    output symbol.

    Raises:
      TypeError: when symbols and real tensors are mixed in one call.
      ValueError: when the symbols' shapes do not fit the layer (say, a Dense built for 2
        features wired on `Input((3,))`).
    """
    listed = isinstance(inputs, (list, tuple))
    sources = tuple(inputs) if listed else (inputs,)
    if not all(isinstance(x, Symbol) for x in sources):
        raise TypeError(f"{type(layer).__name__} '{layer.name}' got symbols mixed with real tensors "
                        f"{[type(x).__name__ for x in sources]}: connect symbols only, then call the Model")
    shapes = [x.shape for x in sources] if listed else sources[0].shape
    layer.prepare(shapes)  # builds the layer once; raises if the shapes do not fit it
    return Symbol(layer.compute_output_shape(shapes), layer, sources, listed)


def as_symbols(symbols, what: str) -> List[Symbol]:
    """A Model's `inputs` or `outputs` (one Symbol or a list of them) as a non-empty list."""
    symbols = list(symbols) if isinstance(symbols, (list, tuple)) else [symbols]
    if not symbols or not all(isinstance(x, Symbol) for x in symbols):
        raise TypeError(f"Model {what} must be Symbols (from Input and layer calls), got {symbols!r}")
    return symbols


def topological_order(outputs: Sequence[Symbol]) -> List[Symbol]:
    """Every symbol the outputs depend on, each after its inputs: a depth-first walk from the
    outputs, in order, recording a node once all its inputs are recorded. Deterministic: the
    same wiring always gives the same order (and so the same variable order)."""
    order, seen = [], set()

    def visit(symbol: Symbol) -> None:
        if id(symbol) in seen:
            return
        seen.add(id(symbol))
        for source in symbol.inputs:
            visit(source)
        order.append(symbol)

    for output in outputs:
        visit(output)
    return order

"""Container: what `Sequential` and the functional `Model` share, a layer made of layers.

A container is itself a `Layer`, so containers nest: a Sequential inside a Sequential, or wired
into a functional Model, builds, runs, summarises and trains like any layer. What every
container has in common is written here once: its variables (each layer's, in layer order,
each layer once), its parameter count, its summary table, its output activation (that of the
layer that produces its output), and whether manual gradients can run through it.

The container's own `forward` and `backward` (in sequential.py and model.py) are the chain
rule: the forward pass runs each layer and keeps what its backward rule needs; the backward
pass runs the rules in reverse, each layer's gradient with respect to its inputs becoming the
upstream gradient of the layers that produced them.
"""

from typing import Callable, List, Optional, Sequence

from layers.layer import Layer
from layers.summary import print_summary


class Container(Layer):
    """Base of `Sequential` and `Model`; a subclass keeps its layers in `layers` and names
    the one that produces its output (`output_layer`)."""

    def __init__(self, name: str):
        super().__init__(name=name)
        self.layers: List[Layer] = []

    @property
    def output_layer(self) -> Layer:
        raise NotImplementedError(f"{type(self).__name__} must name the layer that produces its output")

    @property
    def output_activation(self) -> Callable:
        return self.output_layer.output_activation

    @property
    def trainable_variables(self) -> tuple:
        """Every layer's variables, layers in order, kernel before bias within a layer.

        Overridden because tf.Module's default collects attributes alphabetically, which would
        put each bias before its kernel and break the one-to-one match with Keras's
        `model.trainable_variables` (and with the gradients `backward` returns).
        """
        return tuple(v for layer in self.layers for v in layer.trainable_variables)

    def count_params(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self.trainable_variables)

    def missing_backward(self) -> Optional[str]:
        """The first layer manual gradients cannot run through, and why; None when all can."""
        for layer in self.layers:
            problem = layer.missing_backward()
            if problem:
                return problem
        return None

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Prints one row per layer (or node), with its output shape and parameters, like Keras."""
        print_summary(self.name, self.summary_rows(), self.count_params(), print_fn)

    def summary_rows(self) -> Sequence[Sequence[str]]:
        raise NotImplementedError


def parameters(layer: Layer) -> int:
    """The number of parameters `layer` holds (a nested container: all of its layers')."""
    return sum(int(v.shape.num_elements()) for v in layer.trainable_variables)


def layer_kind(layer: Layer) -> str:
    """'name (Type)', as a summary row names a layer."""
    return f"{layer.name} ({type(layer).__name__})"

"""The tf.keras twin of an engine model: the same layers, names, wiring and weights; and the
reference MLP as Keras builds it.

Used wherever the engine is checked against Keras layer for layer: the parity checks of
functional models (tests/test_functional.py), and the guided tour, which shows one network as
the engine's Sequential, Keras's Sequential and Keras's Functional model. `reference_mlp` is the
one place the Keras side of every comparison builds the reference model (the parity run, the
benchmark, the layer tests), so they all compare against the same network. An optimizer's twin
(`optimizer_twin`) is Keras's of the same class and arguments.
"""

from typing import Dict, Sequence, Tuple, Union

import keras
import tensorflow as tf

from engine import activations, optimizers
from engine.compare.weights import copy_variables
from layers import Activation, Add, Concatenate, Dense, Flatten, Model, Sequential

_ACTIVATION_NAMES = {activations.linear: "linear", activations.relu: "relu", activations.softmax: "softmax"}


def reference_mlp(hidden: Sequence[int] = (256, 128), num_classes: int = 10,
                  input_shape: Sequence[int] = (28, 28), output_activation: str = "softmax") -> keras.Sequential:
    """The seed's MLP in Keras, with Keras's own fresh weights: Flatten, then `Dense(units, "relu")`
    per hidden size, then `Dense(num_classes, output_activation)` ("softmax", or None for logits)."""
    return keras.Sequential([keras.Input(tuple(input_shape)), keras.layers.Flatten()]
                            + [keras.layers.Dense(units, activation="relu") for units in hidden]
                            + [keras.layers.Dense(num_classes, activation=output_activation)])


def optimizer_twin(ours: optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Keras's optimizer of the same class, made with the same arguments (`Optimizer.get_config`:
    the engine's optimizers take Keras's names)."""
    return getattr(keras.optimizers, type(ours).__name__)(**ours.get_config())


def optimizer_pair(setup) -> Tuple[optimizers.Optimizer, keras.optimizers.Optimizer]:
    """A fresh engine optimizer for a `parity.ParitySetup`, and its Keras twin: `setup.optimizer` by
    name with `learning_rate`, `momentum` and `nesterov` where it takes them, and `optimizer_args`."""
    taken = optimizers.arguments_of(setup.optimizer)
    arguments = {name: getattr(setup, name) for name in ("momentum", "nesterov") if name in taken}
    ours = optimizers.get(setup.optimizer, learning_rate=setup.learning_rate, **arguments, **dict(setup.optimizer_args))
    return ours, optimizer_twin(ours)


def keras_layer(layer: tf.Module) -> keras.layers.Layer:
    """The Keras layer computing what `layer` computes, under the same name (weights not copied; a nested
    container's twin is a Keras model, which is a Keras layer).

    Raises:
      ValueError: for a layer or activation with no Keras counterpart here.
    """
    if isinstance(layer, Sequential):
        return keras.Sequential([keras_layer(inner) for inner in layer.layers], name=layer.name)
    if isinstance(layer, Model):
        return functional_twin(layer, copy=False)
    if isinstance(layer, Activation):
        if layer.activation not in _ACTIVATION_NAMES:
            raise ValueError(f"Activation '{layer.name}' applies {layer.activation!r}: a Keras twin needs one "
                             f"of {sorted(_ACTIVATION_NAMES.values())}")
        return keras.layers.Activation(_ACTIVATION_NAMES[layer.activation], name=layer.name)
    if isinstance(layer, Dense):
        if layer.activation not in _ACTIVATION_NAMES:
            raise ValueError(f"Dense '{layer.name}' has activation {layer.activation!r}: a Keras twin needs one "
                             f"of {sorted(_ACTIVATION_NAMES.values())}")
        return keras.layers.Dense(layer.units, activation=_ACTIVATION_NAMES[layer.activation],
                                  use_bias=layer.use_bias, name=layer.name)
    kinds = {Flatten: lambda: keras.layers.Flatten(name=layer.name), Add: lambda: keras.layers.Add(name=layer.name),
             Concatenate: lambda: keras.layers.Concatenate(axis=getattr(layer, "axis", -1), name=layer.name)}
    if type(layer) not in kinds:
        raise ValueError(f"no Keras twin for {type(layer).__name__} '{layer.name}': expected one of "
                         f"Dense, {', '.join(kind.__name__ for kind in kinds)}")
    return kinds[type(layer)]()


def sequential_twin(model: Sequential) -> keras.Sequential:
    """keras.Sequential with `model`'s layers and a copy of its weights; `model` must be built."""
    twin = keras.Sequential([keras.Input(tuple(model.input_shape[1:]))] + [keras_layer(l) for l in model.layers],
                            name=model.name)
    copy_weights(model, twin)
    return twin


def functional_twin(model: Model, copy: bool = True) -> keras.Model:
    """keras.Model wired node for node like `model` (shared layers shared), with its weights (`copy`).

    Raises:
      ValueError: if Keras orders the layers differently, since then `trainable_variables`
        would not correspond position by position (the parity checks rely on it).
    """
    twins: Dict[int, keras.layers.Layer] = {}
    values = {id(x): keras.Input(tuple(x.shape[1:]), name=x.name) for x in model.inputs}
    for node in model.nodes:
        if node.layer is None:
            continue
        layer = twins.setdefault(id(node.layer), keras_layer(node.layer))
        arguments = [values[id(x)] for x in node.inputs]
        values[id(node)] = layer(arguments if node.listed else arguments[0])
    outputs = [values[id(x)] for x in model.outputs]
    inputs = [values[id(x)] for x in model.inputs]
    twin = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                       name=model.name)
    ours = [l.name for l in model.layers]
    theirs = [l.name for l in twin.layers if l.name in ours]
    if ours != theirs:
        raise ValueError(f"Keras orders the layers {theirs}, the engine {ours}: their variables would not pair up")
    if copy:
        copy_weights(model, twin)
    return twin


def copy_weights(source: Union[Sequential, Model], target: keras.Model) -> None:
    """Assigns each engine layer's variables to the Keras layer of the same name (a nested container's
    twin holds them in the same order)."""
    for layer in source.layers:
        copy_variables(layer.trainable_variables, target.get_layer(layer.name).trainable_variables)


def relu_outputs(model: Model, images: tf.Tensor) -> Sequence[tf.Tensor]:
    """The outputs of `model`'s ReLU Dense layers on `images`, in node order."""
    values = model.layer_outputs(images)
    return [values[id(n)] for n in _relu_nodes(model)]


def twin_relu_outputs(model: Model, twin: keras.Model, images: tf.Tensor) -> Sequence[tf.Tensor]:
    """The same outputs from the Keras twin (read through a Keras model ending at those layers)."""
    probe = keras.Model(twin.inputs, [twin.get_layer(n.name).output for n in _relu_nodes(model)])
    outputs = probe(images)
    return outputs if isinstance(outputs, (list, tuple)) else [outputs]


def _relu_nodes(model: Model) -> list:
    return [n for n in model.nodes if isinstance(n.layer, Dense) and n.layer.activation is activations.relu]

"""Containers compose: a Sequential or a functional Model is a layer, so it nests, summarises, trains and
twins in Keras; a plain function in a Sequential is a layer too. The container code is written once
(layers/container.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import activations, gradients, losses, optimizers
from engine.compare import keras_twin
from engine.training import Trainer
from layers import Activation, Add, Dense, Flatten, Input, Model, Sequential
from layers.container import Container

RNG = np.random.default_rng(11)


def nested():
    """Flatten -> [Dense 8 relu -> Dense 6 relu] (a Sequential inside) -> Dense 3 softmax."""
    inner = Sequential([Dense(8, activation="relu"), Dense(6, activation="relu")], name="block")
    return Sequential([Flatten(), inner, Dense(3, activation="softmax")], name="outer")


def test_a_sequential_inside_a_sequential_builds_summarises_and_counts_its_parameters():
    model = nested()
    model.build((None, 2, 2))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert any("block (Sequential)" in line and "(None, 6)" in line and line.endswith("94") for line in lines), text
    assert "Total params: 115" in text
    assert model.count_params() == (4 * 8 + 8) + (8 * 6 + 6) + (6 * 3 + 3) == 115
    assert [v.name.split("/")[-1] for v in model.trainable_variables] == ["kernel:0", "bias:0"] * 3


def test_a_plain_function_is_a_layer_as_in_keras_and_tinygrad():
    model = Sequential([Flatten(), Dense(8), activations.relu, Dense(10)])
    assert isinstance(model.layers[2], Activation) and model.layers[2].name.startswith("activation")
    outputs = model(tf.constant(RNG.random((4, 2, 3)), tf.float32))
    assert outputs.shape == (4, 10)
    model.summary(print_fn=lambda line: None)


def test_a_sequential_wired_into_a_functional_model_runs_and_summarises():
    block = Sequential([Dense(5, activation="relu"), Dense(5)], name="residual_block")
    inputs = Input((5,))
    model = Model(inputs, Dense(2, activation="softmax")(Add()([inputs, block(inputs)])))
    assert model(tf.ones([3, 5])).shape == (3, 2)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("residual_block (Sequential)" in line and "60" in line for line in lines)


def test_nested_containers_train_with_either_gradients_and_agree():
    images, labels = tf.constant(RNG.random((16, 2, 2)), tf.float32), tf.constant(RNG.integers(0, 3, 16))
    tf.random.set_seed(3)
    model = nested()
    model.build((None, 2, 2))
    _, _, tape = gradients.tape_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    _, _, manual = gradients.manual_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    for a, b in zip(tape, manual):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-7)
    history = Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.5), "graph",
                      gradients="manual").fit(images.numpy(), labels.numpy(), 5, 8)
    assert history[-1]["loss"] < history[0]["loss"]


def test_a_nested_model_has_a_keras_twin_with_the_same_outputs():
    model = nested()
    model.build((None, 2, 2))
    twin = keras_twin.sequential_twin(model)
    x = RNG.random((4, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), keras.ops.convert_to_numpy(twin(x)), atol=1e-6)


def test_the_shared_container_code_is_written_once():
    for container in (Sequential, Model):
        assert issubclass(container, Container)
        for shared in ("trainable_variables", "count_params", "summary", "output_activation", "missing_backward"):
            assert shared not in vars(container), f"{container.__name__} writes {shared} again"


def test_a_module_that_is_not_a_layer_is_refused_naming_what_to_do():
    with pytest.raises(ValueError, match=r"can only add callable layers \(layers.Layer\) or functions"):
        Sequential([tf.Module()])

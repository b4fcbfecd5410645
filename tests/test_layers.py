"""Flatten, Dense and Sequential: shapes, variables, errors, and equality with tf.keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine.compare.keras_twin import sequential_twin
from layers import Dense, Flatten, Sequential, mlp


@pytest.mark.parametrize("shape", [(4, 10), (4, 28, 28), (4, 28, 28, 1), (4, 2, 3, 4, 5)])
def test_flatten_keeps_the_batch_and_multiplies_the_rest(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(Flatten()(x).numpy(), x.reshape(shape[0], -1))


def test_flatten_works_with_an_unknown_batch_size():
    flatten = Flatten()
    traced = tf.function(flatten).get_concrete_function(tf.TensorSpec([None, 28, 28], tf.float32))
    assert traced.structured_outputs.shape.as_list() == [None, 784]
    assert flatten(tf.zeros([3, 28, 28])).shape == (3, 784)


def test_flatten_rejects_a_scalar_as_keras_does():
    with pytest.raises(ValueError, match=r"Flatten '.*' expected inputs of rank >= 1, got shape \(\)"):
        Flatten()(tf.zeros([]))
    with pytest.raises(ValueError):
        keras.layers.Flatten()(np.float32(0.0))


def test_dense_creates_kernel_then_bias_lazily_from_the_last_dimension():
    layer = Dense(3, activation="relu", name="probe")
    assert not layer.built and layer.trainable_variables == ()
    layer(tf.ones([2, 4]))
    assert [(v.name, tuple(v.shape)) for v in layer.trainable_variables] == [("probe/kernel:0", (4, 3)), ("probe/bias:0", (3,))]


@pytest.mark.parametrize("activation", [None, "linear", "relu", "softmax"])
def test_dense_computes_activation_of_x_times_kernel_plus_bias(activation):
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    layer = Dense(4, activation=activation, bias_initializer=lambda shape, dtype, seed: tf.fill(shape, 0.5))
    got = layer(x).numpy()
    z = x @ layer.kernel.numpy() + layer.bias.numpy()
    expected = {None: z, "linear": z, "relu": np.maximum(z, 0),
                "softmax": np.exp(z) / np.exp(z).sum(-1, keepdims=True)}[activation]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_dense_without_bias_has_only_a_kernel():
    layer = Dense(2, use_bias=False)
    layer(tf.ones([1, 3]))
    assert [v.name.split("/")[-1] for v in layer.trainable_variables] == ["kernel:0"]


def test_dense_names_the_layer_and_both_shapes_when_the_input_changes():
    layer = Dense(8, name="dense_probe")
    layer(tf.zeros([2, 784]))
    with pytest.raises(ValueError, match=r"Dense 'dense_probe' expected inputs of rank >= 2 of shape \(batch, \.\.\., 784\), got shape \(2, 783\)"):
        layer(tf.zeros([2, 783]))


def test_dense_refuses_to_build_from_an_unknown_last_dimension():
    with pytest.raises(ValueError, match=r"known features dimension, got shape \(None, None\)"):
        Dense(3).build((None, None))


@pytest.mark.parametrize("units", [0, -3, 2.5, "10"])
def test_dense_rejects_units_that_are_not_positive_integers(units):
    with pytest.raises(ValueError, match="expected units to be a positive integer"):
        Dense(units)


def test_dense_rejects_an_unknown_activation_name():
    with pytest.raises(ValueError, match=r"Unknown activation 'tanhh'"):
        Dense(3, activation="tanhh")


def test_the_reference_model_has_235146_parameters_and_prints_them(capsys):
    model = mlp((256, 128), 10)
    model.build((None, 28, 28))
    model.summary()
    printed = capsys.readouterr().out
    assert model.count_params() == 235_146
    assert "Total params: 235,146" in printed and "(None, 784)" in printed and "200,960" in printed


def test_sequential_lists_variables_in_layer_order_kernel_before_bias():
    model = Sequential([Flatten(), Dense(5, name="first"), Dense(2, name="second")])
    model.build((None, 3, 3))
    assert [v.name for v in model.trainable_variables] == [
        "first/kernel:0", "first/bias:0", "second/kernel:0", "second/bias:0"]


def test_sequential_built_with_add_equals_the_constructor_form():
    tf.random.set_seed(1)
    added = Sequential()
    for layer in (Flatten(), Dense(4, activation="relu"), Dense(3, activation="softmax")):
        added.add(layer)
    added.build((None, 2, 2))
    listed = Sequential([Flatten(), Dense(4, activation="relu"), Dense(3, activation="softmax")])
    listed.build((None, 2, 2))
    for a, b in zip(added.trainable_variables, listed.trainable_variables):
        b.assign(a)
    x = tf.random.normal([6, 2, 2])
    np.testing.assert_array_equal(added(x).numpy(), listed(x).numpy())


def test_reference_model_forward_pass_equals_tf_keras_with_the_same_weights():
    tf.random.set_seed(0)
    model = mlp((256, 128), 10)
    model.build((None, 28, 28))
    x = tf.random.uniform([64, 28, 28])
    np.testing.assert_allclose(model(x).numpy(), sequential_twin(model)(x).numpy(), atol=1e-6)


def test_reference_model_gradients_equal_tf_keras_gradients():
    tf.random.set_seed(0)
    model = mlp((64,), 10)
    model.build((None, 28, 28))
    twin = sequential_twin(model)
    x, y = tf.random.uniform([32, 28, 28]), tf.random.uniform([32], maxval=10, dtype=tf.int32)
    loss = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape(persistent=True) as tape:
        ours, theirs = loss(y, tf.identity(model(x))), loss(y, tf.identity(twin(x)))
    for g_ours, g_theirs in zip(tape.gradient(ours, model.trainable_variables),
                                tape.gradient(theirs, twin.trainable_variables)):
        np.testing.assert_allclose(g_ours.numpy(), g_theirs.numpy(), atol=1e-6)


def test_sequential_names_the_expected_and_received_shapes():
    model = mlp((8,), 10, name="probe_model")
    model.build((None, 28, 28))
    with pytest.raises(ValueError, match=r"Sequential 'probe_model' expected inputs of shape \(None, 28, 28\), got shape \(2, 28, 27\)"):
        model(tf.zeros([2, 28, 27]))


def test_an_empty_sequential_says_to_add_layers():
    with pytest.raises(ValueError, match="has no layers: add"):
        Sequential()(tf.zeros([1, 2]))


def test_seeds_make_weights_reproducible_and_layers_distinct():
    tf.random.set_seed(7)
    first = mlp((16, 16), 10)
    first.build((None, 16))
    tf.random.set_seed(7)
    second = mlp((16, 16), 10)
    second.build((None, 16))
    for a, b in zip(first.trainable_variables, second.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    hidden_1, hidden_2 = first.layers[1].kernel.numpy(), first.layers[2].kernel.numpy()
    assert not np.allclose(hidden_1[:16], hidden_2), "two layers drew the same initial weights"

"""Issue 13, Dense, Flatten, activations and SGD: on the edges (ranks 1-4, float16/32/64 and
integer inputs, wiring, momentum) they give Keras's value or Keras's kind of error. Each test
feeds the same inputs to the engine and to `keras`; the later ones are cases from Keras's own
unit tests that have a meaning for the engine's API."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import activations, optimizers
from layers import Dense, Flatten, Input

MODES = {"eager": lambda f: f, "graph": tf.function, "xla": lambda f: tf.function(f, jit_compile=True)}
DTYPES = [np.float16, np.float32, np.float64]
RNG = np.random.default_rng(13)


def keras_dense_like(layer: Dense, input_dim: int) -> keras.layers.Dense:
    twin = keras.layers.Dense(layer.units, use_bias=layer.use_bias)
    twin.build((None, input_dim))
    twin.set_weights([v.numpy() for v in layer.trainable_variables])
    return twin


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
@pytest.mark.parametrize("shape", [(2, 3), (2, 5, 3), (2, 4, 5, 3)], ids=["rank-2", "rank-3", "rank-4"])
def test_dense_applies_to_the_last_axis_of_any_rank_and_casts_inputs_as_keras_does(shape, dtype, mode):
    x = RNG.integers(-3, 4, size=shape).astype(dtype)
    layer = Dense(2)
    layer.build((None, 3))
    got = MODES[mode](layer)(x)
    expected = keras_dense_like(layer, 3)(x)
    assert got.dtype == expected.dtype == tf.float32 and got.shape == expected.shape == shape[:-1] + (2,)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_dense_without_bias_has_bias_none_as_keras_does():
    ours, theirs = Dense(2, use_bias=False), keras.layers.Dense(2, use_bias=False)
    ours.build((None, 3))
    theirs.build((None, 3))
    assert ours.bias is None and theirs.bias is None


def test_dense_activation_can_be_set_to_none_after_construction_as_in_keras():
    layer = Dense(2, activation="relu")
    layer.activation = None  # linear, as keras.layers.Dense reads None
    x = -np.ones((1, 3), np.float32)
    layer(x)
    layer.kernel.assign(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(layer(x).numpy(), [[-3.0, -3.0]])


def test_a_dense_built_for_2_features_refuses_to_be_wired_on_3_as_keras_does():
    ours, theirs = Dense(4, name="narrow"), keras.layers.Dense(4)
    ours.build((None, 2))
    theirs.build((None, 2))
    with pytest.raises(ValueError, match=r"Dense 'narrow' expected inputs .*\(batch, \.\.\., 2\), got shape \(None, 3\)"):
        ours(Input((3,)))
    with pytest.raises(ValueError):
        theirs(keras.Input((3,)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES + [np.int32])
@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 3, 2), (5, 3, 2, 4)], ids=["rank-1", "rank-2", "rank-3", "rank-4"])
def test_flatten_maps_every_rank_from_1_and_casts_floats_as_keras_does(shape, dtype, mode):
    x = RNG.integers(-3, 4, size=shape).astype(dtype)
    got, expected = MODES[mode](Flatten())(x), keras.layers.Flatten()(x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), keras.ops.convert_to_numpy(expected))


def test_sgd_takes_a_tensor_momentum_as_tf_keras_did_where_keras_3_refuses_it():
    """Issue 20: tf-keras's testMomentumTensor passes a constant tensor, cast as the learning rate is."""
    with_tensor, with_float = tf.Variable([1.0, 2.0]), tf.Variable([1.0, 2.0])
    for variable, momentum in ((with_tensor, tf.constant(0.9)), (with_float, 0.9)):
        sgd = optimizers.SGD(0.1, momentum=momentum)
        for gradient in ([1.0, -2.0], [0.5, 0.5]):
            sgd.apply_gradients([(tf.constant(gradient), variable)])
    np.testing.assert_array_equal(with_tensor.numpy(), with_float.numpy())
    with pytest.raises(ValueError, match=r"SGD momentum must be a float in \[0, 1\)"):
        optimizers.SGD(0.1, momentum=tf.constant(1.0))
    with pytest.raises(ValueError):
        keras.optimizers.SGD(0.1, momentum=tf.constant(0.9))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64])
def test_sgd_with_momentum_updates_float16_32_64_variables_as_keras_does(dtype, nesterov):
    ours, theirs = tf.Variable(tf.ones([3], dtype)), keras.Variable(np.ones(3), dtype=dtype.name)
    ours_sgd = optimizers.SGD(0.1, momentum=0.9, nesterov=nesterov)
    their_sgd = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=nesterov)
    for step in range(3):
        gradient = tf.constant([1.0, -2.0, 0.5 * step], dtype)
        ours_sgd.apply_gradients([(gradient, ours)])
        their_sgd.apply_gradients([(gradient, theirs)])
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-3 if dtype == tf.float16 else 1e-6)


# Beyond the issue: cases from Keras's own unit tests that have a meaning for the engine's API.

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((5,), -1), ((1, 2, 5), 1), ((2, 3, 5), (1, 2)), ((2, 3, 4, 5), (2, 3)), ((2, 5), -1)])
def test_softmax_and_log_softmax_take_keras_axis_argument(name, shape, axis):
    z = RNG.random(shape).astype(np.float32)
    ours = getattr(activations, name)(tf.constant(z), axis=axis)
    theirs = getattr(keras.activations, name)(z, axis=axis)
    np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-6, atol=1e-7)


def test_a_dense_softmax_over_the_last_axis_is_the_output_activation_the_loss_skips():
    """A Dense(softmax) hands the step its logits (x @ W + b) and names softmax as what follows; the
    loss then computes from the logits (`losses.output_loss`), as Keras's does for such a layer."""
    layer = Dense(4, activation="softmax")
    x = tf.constant(RNG.normal(size=(3, 5)).astype(np.float32))
    logits = layer.logits(x)
    assert layer.output_activation is activations.softmax
    np.testing.assert_array_equal(activations.softmax(logits).numpy(), layer(x).numpy())
    np.testing.assert_array_equal(logits.numpy(), (x @ layer.kernel + layer.bias).numpy())


@pytest.mark.parametrize("shape", [(None, 2, 3), (5, 2, None), (None, None, 7)])
def test_flatten_of_a_symbol_keeps_unknown_dimensions_unknown_as_keras_does(shape):
    ours = Flatten()(Input(shape[1:])).shape.as_list()[1:]
    theirs = keras.layers.Flatten()(keras.Input(batch_shape=shape)).shape[1:]
    assert ours == list(theirs)


def test_flatten_of_dynamic_dimensions_in_a_graph_gives_keras_result():
    flatten = tf.function(Flatten(), input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    for shape in [(3, 5, 7), (2, 7, 5)]:
        x = RNG.random(shape).astype(np.float32)
        np.testing.assert_array_equal(flatten(x).numpy(), keras.ops.convert_to_numpy(keras.layers.Flatten()(x)))


@pytest.mark.parametrize("units", [0, -3, 2.5, None, "64"])
def test_dense_refuses_units_that_keras_refuses(units):
    with pytest.raises(ValueError, match="positive integer"):
        Dense(units)
    with pytest.raises(ValueError, match="positive integer"):
        keras.layers.Dense(units)


@pytest.mark.parametrize("activation, use_bias, expected", [
    ("relu", True, [[10.0, 0.0]]), (None, False, [[5.0, -6.0]]), ("relu", False, [[5.0, 0.0]])])
def test_dense_gives_kerass_numbers_for_set_weights(activation, use_bias, expected):
    kernel, bias, x = np.array([[1.0, -2.0], [3.0, -4.0]]), np.array([5.0, -6.0]), np.array([[-1.0, 2.0]])
    ours, theirs = Dense(2, activation=activation, use_bias=use_bias), keras.layers.Dense(2, activation=activation, use_bias=use_bias)
    ours.build((1, 2))
    theirs.build((1, 2))
    for variable, value in zip(ours.trainable_variables, [kernel, bias]):
        variable.assign(value)
    theirs.set_weights([kernel, bias][:len(theirs.weights)])
    np.testing.assert_array_equal(ours(x).numpy(), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(theirs(x)), expected)


def test_sgd_with_nesterov_and_no_momentum_is_plain_sgd_as_in_keras():
    ours, theirs = tf.Variable(np.ones(10)), keras.Variable(np.ones(10), dtype="float64")
    ours_sgd, their_sgd = optimizers.SGD(nesterov=True), keras.optimizers.SGD(nesterov=True)
    for gradient in [np.full(10, 0.01)] + [np.arange(0.1, 1.1, 0.1)] * 4:
        ours_sgd.apply_gradients([(tf.constant(gradient), ours)])
        their_sgd.apply_gradients([(tf.constant(gradient), theirs)])
    np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-12)

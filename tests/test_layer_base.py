"""layers.layer.Layer: naming, build-on-first-call, casting, shape checks and functional wiring
live in the base, so a layer is its `call` (the math) and, if it has variables, its `build`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import Add, Concatenate, Dense, Flatten, Input, Model
from layers.layer import Layer


class PerFeatureScale(Layer):
    """A layer written as a user would: a variable per feature, built from the last dimension."""

    builds = 0

    def build(self, input_shape):
        PerFeatureScale.builds += 1
        self.input_last_dim = int(input_shape[-1])
        with tf.init_scope(), self.name_scope:
            self.scale = tf.Variable(tf.fill([self.input_last_dim], 2.0), name="scale")
        self.built = True

    def call(self, inputs):
        return inputs * self.scale  # [batch, features] * [features]


def test_the_base_gives_keras_default_names_from_the_class_name():
    class TwinScale(keras.layers.Layer):
        pass

    assert PerFeatureScale().name.startswith("per_feature_scale")
    assert TwinScale().name.startswith("twin_scale")


def test_a_layer_is_built_once_on_its_first_call_and_casts_float64_inputs():
    PerFeatureScale.builds = 0
    layer = PerFeatureScale(name="scaler")
    for _ in range(3):
        outputs = layer(np.ones((2, 3)))  # float64, as NumPy makes it
    assert PerFeatureScale.builds == 1 and outputs.dtype == tf.float32
    np.testing.assert_array_equal(outputs.numpy(), np.full((2, 3), 2.0))
    assert [v.name for v in layer.trainable_variables] == ["scaler/scale:0"]


def test_the_base_checks_inputs_against_the_built_shape_naming_both():
    layer = PerFeatureScale(name="three")
    layer(tf.ones([1, 3]))
    with pytest.raises(ValueError, match=r"PerFeatureScale 'three' expected inputs .*\(batch, \.\.\., 3\), got shape \(1, 4\)"):
        layer(tf.ones([1, 4]))


def test_the_base_wires_symbols_into_a_model_and_names_ops_by_layer():
    inputs = Input((3,))
    model = Model(inputs, PerFeatureScale(name="wired")(inputs))
    graph = tf.function(model).get_concrete_function(tf.TensorSpec([None, 3], tf.float32)).graph
    assert any(op.name.startswith("wired/") for op in graph.get_operations())
    np.testing.assert_array_equal(model(tf.ones([2, 3])).numpy(), np.full((2, 3), 2.0))


@pytest.mark.parametrize("layer_class", [Dense, Flatten, Add, Concatenate])
def test_the_engine_layers_leave_calling_to_the_base_and_write_only_call(layer_class):
    assert issubclass(layer_class, Layer)
    assert "__call__" not in vars(layer_class) and "call" in vars(layer_class)

"""Sequential, as Keras's own Sequential tests use it: an Input first, pop, unique names, build
conflicts; each case run through the engine and through `keras` with the same calls."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import Dense, Input, Sequential


def test_an_input_first_builds_each_layer_as_it_is_added_as_in_keras():
    ours = Sequential([Input((2,)), Dense(4), Dense(5)])
    theirs = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(5)])
    assert ours.built and theirs.built
    assert len(ours.layers) == len(theirs.layers) == 2
    assert [tuple(v.shape) for v in ours.trainable_variables] == [tuple(v.shape) for v in theirs.trainable_variables]
    assert ours(np.random.random((3, 2))).shape == theirs(np.random.random((3, 2))).shape == (3, 5)


def test_pop_removes_the_top_layer_as_in_keras():
    ours, theirs = Sequential([Input((2,)), Dense(4), Dense(5)]), keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(5)])
    ours.pop()
    theirs.pop()
    assert len(ours.layers) == len(theirs.layers) == 1
    assert len(ours.trainable_variables) == len(theirs.trainable_variables) == 2
    assert ours(np.ones((3, 2))).shape == theirs(np.ones((3, 2))).shape == (3, 4)
    with pytest.raises(ValueError, match="has no layers to pop"):
        Sequential().pop()


def test_a_second_input_is_refused_as_in_keras():
    ours, theirs = Sequential([Input((2,))]), keras.Sequential([keras.Input((2,))])
    with pytest.raises(ValueError, match="already been configured"):
        ours.add(Input((2,)))
    with pytest.raises(ValueError, match="already been configured"):
        theirs.add(keras.Input((2,)))


def test_two_layers_of_one_name_are_refused_as_in_keras():
    ours, theirs = Sequential([Dense(2, name="twice")]), keras.Sequential([keras.layers.Dense(2, name="twice")])
    with pytest.raises(ValueError, match="should have unique names"):
        ours.add(Dense(2, name="twice"))
    with pytest.raises(ValueError, match="should have unique names"):
        theirs.add(keras.layers.Dense(2, name="twice"))


def test_building_for_another_input_shape_is_refused_as_in_keras():
    ours, theirs = Sequential([Input((2,)), Dense(2)]), keras.Sequential([keras.Input((2,), batch_size=3), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"already been configured with input shape \(None, 2\), got \(3, 4\)"):
        ours.build((3, 4))
    with pytest.raises(ValueError, match="already been configured"):
        theirs.build((3, 4))
    ours.build((3, 2))
    theirs.build((3, 2))


def test_a_non_layer_is_refused_with_a_value_error_as_in_keras():
    with pytest.raises(ValueError, match="can only add callable layers"):
        Sequential().add({})
    with pytest.raises(ValueError):
        keras.Sequential().add({})


def test_a_layer_built_for_other_inputs_is_refused_when_the_stack_is_built():
    layer = Dense(3, name="built_for_4")
    layer(tf.ones([1, 4]))
    with pytest.raises(ValueError, match=r"Dense 'built_for_4' expected inputs .*\(batch, \.\.\., 4\), got shape \(None, 2\)"):
        Sequential([Input((2,)), layer])

"""The numerical gradient check, run on everything the engine has, for both ways to the gradient.

Every layer (Dense with each activation, Flatten, Add, Concatenate, Activation), every
activation, every loss, the reference MLP and a functional model with a skip connection and a
concatenation: central differences in float64 against the tape's gradient and against the
backward rules written beside each forward, max relative error (CS231n's) at most 1e-7.
The checker itself is checked too: a wrong rule is caught.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from engine import activations, losses
from engine.gradient_check import check_layer, check_model, relative_error, table
from layers import Activation, Add, Concatenate, Dense, Flatten, Input, Model, Sequential, mlp

BOUND = 1e-7
RNG = np.random.default_rng(0)  # the layers' inputs
WAYS = ["tape", "manual"]


def small_random(shape, dtype, seed):
    """Biases drawn around 0 rather than zeros: a zero bias on an all-zero input puts a ReLU exactly at
    its kink, where the two sides of a central difference disagree (the point, not the rule, is wrong)."""
    return tf.random.stateless_normal(shape, seed=[seed, 1], stddev=0.1, dtype=dtype)


def worst(checks) -> float:
    return max(c.max_relative_error for c in checks)


@pytest.mark.parametrize("gradients", WAYS)
@pytest.mark.parametrize("activation", ["linear", "relu", "softmax", "log_softmax"])
def test_dense_with_each_activation(activation, gradients):
    layer = Dense(5, activation=activation, dtype="float64", seed=3)
    assert worst(check_layer(layer, RNG.normal(size=(7, 4)), gradients)) <= BOUND


@pytest.mark.parametrize("gradients", WAYS)
def test_dense_on_inputs_of_rank_three_and_without_bias(gradients):
    layer = Dense(3, activation="relu", use_bias=False, dtype="float64", seed=4)
    assert worst(check_layer(layer, RNG.normal(size=(2, 5, 4)), gradients)) <= BOUND


@pytest.mark.parametrize("gradients", WAYS)
@pytest.mark.parametrize("layer, inputs", [
    (lambda: Flatten(dtype="float64"), lambda: RNG.normal(size=(3, 4, 2))),
    (lambda: Add(dtype="float64"), lambda: [RNG.normal(size=(4, 3)) for _ in range(3)]),
    (lambda: Concatenate(dtype="float64"), lambda: [RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))]),
    (lambda: Concatenate(axis=1, dtype="float64"), lambda: [RNG.normal(size=(2, 3, 2)), RNG.normal(size=(2, 1, 2))]),
    (lambda: Activation(activations.relu, dtype="float64"), lambda: RNG.normal(size=(4, 6))),
], ids=["flatten", "add", "concatenate", "concatenate-axis-1", "activation"])
def test_the_layers_without_variables(layer, inputs, gradients):
    assert worst(check_layer(layer(), inputs(), gradients)) <= BOUND


@pytest.mark.parametrize("name", sorted(activations.BACKWARD, key=lambda f: f.__name__), ids=lambda f: f.__name__)
def test_each_activation_rule_is_its_derivative(name):
    """Each rule in engine.activations.BACKWARD, alone: dL/dz from (y, dL/dy) against differences of f."""
    z = tf.Variable(RNG.normal(size=(5, 4)))
    upstream = tf.constant(RNG.normal(size=(5, 4)))
    rule = activations.BACKWARD[name](name(z), upstream).numpy()
    step = 1e-6
    numerical = np.zeros((5, 4))
    for index in np.ndindex(5, 4):
        for sign in (1, -1):
            moved = z.numpy().copy()
            moved[index] += sign * step
            numerical[index] += sign * float(tf.reduce_sum(upstream * name(tf.constant(moved)))) / (2 * step)
    assert relative_error(rule, numerical).max() <= BOUND


def small_functional_model():
    """h = relu(Dense(x)); r = h + relu(Dense(h)) (a skip: h feeds two layers); [r, h] concatenated; softmax."""
    inputs = Input((4, 3))
    dense = functools.partial(Dense, dtype="float64", bias_initializer=small_random)
    hidden = dense(6, activation="relu", seed=1)(Flatten(dtype="float64")(inputs))
    residual = Add(dtype="float64")([hidden, dense(6, activation="relu", seed=2)(hidden)])
    joined = Concatenate(dtype="float64")([residual, hidden])
    return Model(inputs, dense(5, activation="softmax", seed=3)(joined))


LOSS_CASES = {
    "sparse-logits": (losses.sparse_categorical_crossentropy, "softmax", lambda rng: rng.integers(0, 5, 8)),
    "sparse-probabilities": (functools.partial(losses.sparse_categorical_crossentropy, from_logits=False), "softmax",
                             lambda rng: rng.integers(0, 5, 8)),
    "categorical": (losses.categorical_crossentropy, "softmax", lambda rng: np.eye(5)[rng.integers(0, 5, 8)]),
    "mse": (losses.mean_squared_error, None, lambda rng: rng.normal(size=(8, 5))),
    "sparse-from-logits-on-a-linear-output": (
        functools.partial(losses.sparse_categorical_crossentropy, from_logits=True), None, lambda rng: rng.integers(0, 5, 8)),
}


@pytest.mark.parametrize("gradients", WAYS)
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_each_loss_through_a_small_model(case, gradients):
    """A partial with from_logits=False is not the plain loss object, so a softmax output is scored
    from its probabilities (the clipped route): its rule is checked too."""
    loss_fn, output, labels = LOSS_CASES[case]
    rng = np.random.default_rng(1)
    model = Sequential([Flatten(dtype="float64"), Dense(6, "relu", bias_initializer=small_random, seed=1, dtype="float64"),
                        Dense(5, output, bias_initializer=small_random, seed=2, dtype="float64")])
    model.build((None, 4, 3))
    assert worst(check_model(model, loss_fn, rng.random((8, 4, 3)), labels(rng), gradients)) <= BOUND


@pytest.mark.parametrize("gradients", WAYS)
def test_the_reference_mlp(gradients):
    tf.random.set_seed(0)
    model = mlp((256, 128), 10, dtype="float64")
    model.build((None, 28, 28))
    rng = np.random.default_rng(3)
    images, labels = rng.random((16, 28, 28)), rng.integers(0, 10, 16)
    checks = check_model(model, losses.sparse_categorical_crossentropy, images, labels, gradients)
    assert [c.name for c in checks] == [v.name for v in model.trainable_variables]
    assert worst(checks) <= BOUND, table(checks)


@pytest.mark.parametrize("gradients", WAYS)
def test_a_functional_model_with_a_skip_connection_and_a_concatenation(gradients):
    model, rng = small_functional_model(), np.random.default_rng(2)
    checks = check_model(model, losses.sparse_categorical_crossentropy, rng.random((8, 4, 3)), rng.integers(0, 5, 8),
                         gradients, entries=20)
    assert worst(checks) <= BOUND, table(checks)


def test_a_nested_container_backpropagates_through_its_layers():
    inner = mlp((6,), 4, output_activation="relu", dtype="float64")
    model = mlp((5,), 3, dtype="float64")
    model.layers.insert(1, inner)  # Flatten -> [Flatten -> Dense 6 -> Dense 4 relu] -> Dense 5 -> Dense 3
    model.build((None, 2, 3))
    rng = np.random.default_rng(4)
    assert worst(check_model(model, losses.sparse_categorical_crossentropy, rng.random((6, 2, 3)),
                             rng.integers(0, 3, 6), "manual")) <= BOUND


def test_the_check_catches_a_wrong_rule(monkeypatch):
    """A relu rule that lets the gradient through inactive units too is flagged by orders of magnitude."""
    monkeypatch.setitem(activations.BACKWARD, activations.relu, lambda outputs, upstream: upstream)
    layer = Dense(5, activation="relu", dtype="float64", seed=3)
    assert worst(check_layer(layer, RNG.normal(size=(7, 4)), "manual")) > 1e-2


def test_the_table_names_every_tensor_and_its_worst_entry():
    tf.random.set_seed(0)
    model = mlp((4,), 3, dtype="float64")
    model.build((None, 2))
    text = table(check_model(model, losses.sparse_categorical_crossentropy, RNG.random((5, 2)), [0, 1, 2, 0, 1]))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["tensor", "shape", "entries"] and len(lines) == 1 + 4
    assert "dense" in lines[1] and "(2, 4)" in lines[1]

"""engine.optimizers.SGD against a float64 NumPy transcription of the rule and keras.optimizers.SGD."""

import functools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import optimizers

STEPS = 5
LEARNING_RATE = 0.1

_rng = np.random.default_rng(0)
# Two variables of different shapes, so each needs its own velocity slot.
INITIAL = {
    "kernel": _rng.normal(size=(3, 2)).astype(np.float32),
    "bias": _rng.normal(size=(2,)).astype(np.float32),
}
# A different gradient at every step, with sign flips, so momentum both builds up and cancels.
GRADIENTS = [
    {name: _rng.normal(size=value.shape).astype(np.float32) for name, value in INITIAL.items()}
    for _ in range(STEPS)
]

CONFIGS = {
    "plain": dict(momentum=0.0, nesterov=False),
    "momentum": dict(momentum=0.9, nesterov=False),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "nesterov-low-momentum": dict(momentum=0.5, nesterov=True),
}

RUNNERS = {
    "eager": lambda fn: fn,
    "graph": tf.function,
    "xla": functools.partial(tf.function, jit_compile=True),
}

# Against the float64 oracle: 5 float32 steps on weights of size ~1 each round a few times
# (1 ulp = 1.2e-7), so entries that end near 0 need an absolute bound of a few ulps.
ORACLE_TOLERANCE = dict(rtol=1e-6, atol=5e-7)
# Against Keras the float32 ops are the same ones in the same order.
KERAS_TOLERANCE = dict(rtol=1e-6, atol=1e-7)


def numpy_sgd(initial, gradients, learning_rate, momentum, nesterov):
    """The update rule from the Keras documentation, in float64, one step at a time."""
    weights = {name: value.astype(np.float64) for name, value in initial.items()}
    velocity = {name: np.zeros_like(value) for name, value in weights.items()}
    for step in gradients:
        for name, g in step.items():
            if g is None:
                continue
            if momentum == 0.0:
                weights[name] = weights[name] - learning_rate * g
            elif nesterov:
                velocity[name] = momentum * velocity[name] - learning_rate * g
                weights[name] = weights[name] + momentum * velocity[name] - learning_rate * g
            else:
                velocity[name] = momentum * velocity[name] - learning_rate * g
                weights[name] = weights[name] + velocity[name]
    return weights, velocity


def train(optimizer, gradients):
    """Applies each step's gradients to fresh tf.Variables holding INITIAL; returns their values."""
    variables = {name: tf.Variable(value, name=name) for name, value in INITIAL.items()}
    for step in gradients:
        optimizer.apply_gradients(
            [(None if step[name] is None else tf.constant(step[name]), variables[name]) for name in variables]
        )
    return {name: variable.numpy() for name, variable in variables.items()}


def assert_weights_close(actual, expected, tolerance):
    for name in INITIAL:
        np.testing.assert_allclose(actual[name], expected[name], err_msg=name, **tolerance)


@pytest.mark.parametrize("config", CONFIGS)
def test_several_steps_follow_the_numpy_update_rule(config):
    optimizer = optimizers.SGD(learning_rate=LEARNING_RATE, **CONFIGS[config])
    expected, velocity = numpy_sgd(INITIAL, GRADIENTS, LEARNING_RATE, **CONFIGS[config])
    assert_weights_close(train(optimizer, GRADIENTS), expected, ORACLE_TOLERANCE)
    if CONFIGS[config]["momentum"]:
        # The slots hold the NumPy velocity too, so the next step would also be right.
        slots = {name: optimizer.velocities[i].numpy() for i, name in enumerate(INITIAL)}
        assert_weights_close(slots, velocity, ORACLE_TOLERANCE)


@pytest.mark.parametrize("config", CONFIGS)
def test_several_steps_match_keras_sgd_applying_the_same_gradients(config):
    ours = train(optimizers.SGD(learning_rate=LEARNING_RATE, **CONFIGS[config]), GRADIENTS)
    theirs = train(keras.optimizers.SGD(learning_rate=LEARNING_RATE, **CONFIGS[config]), GRADIENTS)
    assert_weights_close(ours, theirs, KERAS_TOLERANCE)


def test_the_three_rules_really_differ_on_these_gradients():
    """Guards the tests above: were the configs to coincide, they could not catch a mix-up."""
    results = [
        train(optimizers.SGD(LEARNING_RATE, **CONFIGS[config]), GRADIENTS)["kernel"]
        for config in ("plain", "momentum", "nesterov")
    ]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(results[i] - results[j]).max() > 1e-2


def test_momentum_accelerates_a_constant_gradient_towards_lr_over_one_minus_momentum():
    """v_n = -lr g (1 - m^n) / (1 - m): after 50 steps at m = 0.5, essentially -2 lr g per step."""
    optimizer = optimizers.SGD(learning_rate=0.1, momentum=0.5)
    w = tf.Variable([0.0])
    for _ in range(50):
        before = w.numpy()
        optimizer.apply_gradients([(tf.constant([1.0]), w)])
    np.testing.assert_allclose(w.numpy() - before, [-0.1 / (1 - 0.5)], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")  # Keras's, by design here
@pytest.mark.parametrize("config", ["plain", "momentum", "nesterov"])
def test_none_gradients_leave_their_variable_untouched_and_others_still_update(config):
    gradients = [{"kernel": step["kernel"], "bias": None} for step in GRADIENTS]
    ours = train(optimizers.SGD(LEARNING_RATE, **CONFIGS[config]), gradients)
    theirs = train(keras.optimizers.SGD(LEARNING_RATE, **CONFIGS[config]), gradients)
    expected, _ = numpy_sgd(INITIAL, gradients, LEARNING_RATE, **CONFIGS[config])
    np.testing.assert_array_equal(ours["bias"], INITIAL["bias"])
    assert_weights_close(ours, expected, ORACLE_TOLERANCE)
    assert_weights_close(ours, theirs, KERAS_TOLERANCE)


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_a_variable_whose_gradient_appears_late_starts_from_zero_velocity():
    gradients = [
        {"kernel": step["kernel"], "bias": None if i < 2 else step["bias"]} for i, step in enumerate(GRADIENTS)
    ]
    ours = train(optimizers.SGD(LEARNING_RATE, momentum=0.9), gradients)
    theirs = train(keras.optimizers.SGD(LEARNING_RATE, momentum=0.9), gradients)
    expected, _ = numpy_sgd(INITIAL, gradients, LEARNING_RATE, momentum=0.9, nesterov=False)
    assert_weights_close(ours, expected, ORACLE_TOLERANCE)
    assert_weights_close(ours, theirs, KERAS_TOLERANCE)


def test_a_gradient_of_the_wrong_shape_is_rejected_naming_both_shapes_and_the_variable():
    optimizer = optimizers.SGD(LEARNING_RATE)
    w = tf.Variable(tf.zeros([2]), name="w")
    expected = "SGD got a gradient of shape (3,) for variable 'w:0' of shape (2,)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        optimizer.apply_gradients([(tf.zeros([3]), w)])
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("learning_rate", [0.0, -0.1])
def test_a_learning_rate_that_is_not_positive_is_rejected(learning_rate):
    with pytest.raises(ValueError, match=re.escape(f"SGD learning_rate must be > 0, got {learning_rate}")):
        optimizers.SGD(learning_rate=learning_rate)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_a_momentum_outside_zero_to_one_is_rejected(momentum):
    with pytest.raises(ValueError, match=re.escape(f"SGD momentum must be a float in [0, 1), got {momentum}")):
        optimizers.SGD(momentum=momentum)


@pytest.mark.parametrize("build_first", [True, False], ids=["slots-built-eagerly", "slots-built-while-tracing"])
@pytest.mark.parametrize("mode", ["graph", "xla"])
@pytest.mark.parametrize("config", ["plain", "momentum", "nesterov"])
def test_compiled_steps_give_the_eager_result(config, mode, build_first):
    """The training loop builds slots before tracing; the optimizer must not depend on it.

    Slots created during the first call make tf.function trace that call twice (once to
    create variables, once without); later steps must reuse the trace.
    """
    eager = train(optimizers.SGD(LEARNING_RATE, **CONFIGS[config]), GRADIENTS)

    optimizer = optimizers.SGD(LEARNING_RATE, **CONFIGS[config])
    variables = {name: tf.Variable(value) for name, value in INITIAL.items()}
    if build_first:
        optimizer.build(list(variables.values()))

    @RUNNERS[mode]
    def step(grads):
        optimizer.apply_gradients([(grads[name], variables[name]) for name in variables])

    step({name: tf.constant(g) for name, g in GRADIENTS[0].items()})
    traces_after_first_step = step.experimental_get_tracing_count()
    for grads in GRADIENTS[1:]:
        step({name: tf.constant(g) for name, g in grads.items()})
    compiled = {name: variable.numpy() for name, variable in variables.items()}
    assert_weights_close(compiled, eager, KERAS_TOLERANCE)
    assert step.experimental_get_tracing_count() == traces_after_first_step
    if build_first:
        assert traces_after_first_step == 1
    assert len(optimizer.velocities) == (0 if config == "plain" else len(INITIAL))


@pytest.mark.parametrize("config", ["momentum", "nesterov"])
def test_velocity_slots_are_created_once_per_variable(config):
    optimizer = optimizers.SGD(LEARNING_RATE, **CONFIGS[config])
    variables = [tf.Variable(value) for value in INITIAL.values()]
    optimizer.build(variables)
    optimizer.build(variables)
    first_slots = list(optimizer.velocities)
    for grads in GRADIENTS:
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads.values()], variables))
    assert len(optimizer.velocities) == len(variables)
    assert all(a is b for a, b in zip(optimizer.velocities, first_slots))
    assert all(not slot.trainable for slot in optimizer.velocities)
    assert [slot.shape for slot in optimizer.velocities] == [v.shape for v in variables]


def test_plain_sgd_creates_no_slots():
    optimizer = optimizers.SGD(LEARNING_RATE)
    train(optimizer, GRADIENTS)
    assert optimizer.velocities == []


def test_iterations_count_apply_gradients_calls_like_keras():
    ours, theirs = optimizers.SGD(LEARNING_RATE), keras.optimizers.SGD(LEARNING_RATE)
    train(ours, GRADIENTS)
    train(theirs, GRADIENTS)
    assert ours.iterations.numpy() == theirs.iterations.numpy() == STEPS


def test_changing_the_learning_rate_variable_takes_effect_without_retracing():
    """learning_rate is a tf.Variable, so a schedule can assign it between compiled steps."""
    optimizer = optimizers.SGD(learning_rate=0.1)
    w = tf.Variable([1.0])

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.constant([1.0]), w)])

    step()
    optimizer.learning_rate.assign(0.01)
    step()
    np.testing.assert_allclose(w.numpy(), [1.0 - 0.1 - 0.01], rtol=1e-6)
    assert step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("dtype", [tf.float16, tf.float64])
def test_updates_keep_the_variable_dtype_and_cast_the_gradient(dtype):
    optimizer = optimizers.SGD(learning_rate=0.5, momentum=0.5)
    w = tf.Variable(tf.constant([1.0, -2.0], dtype))
    optimizer.apply_gradients([(tf.constant([2.0, 4.0], tf.float32), w)])
    assert w.dtype == dtype
    # v = -0.5 g = [-1, -2]; w + v: exact in any float dtype.
    np.testing.assert_array_equal(w.numpy(), np.array([0.0, -4.0]))

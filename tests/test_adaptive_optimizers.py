"""Adam, AdamW and RMSprop against a float64 NumPy transcription of their rules, keras.optimizers
on the same gradients, and the golden values of Keras's own tests."""

import functools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import optimizers

STEPS = 6
_rng = np.random.default_rng(0)
# Two variables of different shapes (each needs its own slots), gradients that change sign.
INITIAL = [_rng.normal(size=(3, 2)), _rng.normal(size=(2,))]
GRADIENTS = [[_rng.normal(size=value.shape) for value in INITIAL] for _ in range(STEPS)]

CONFIGS = {
    "adam": ("adam", dict(learning_rate=0.1)),
    "adam-amsgrad": ("adam", dict(learning_rate=0.1, beta_2=0.5, amsgrad=True)),  # v falls: v_hat stays
    "adam-weight_decay": ("adam", dict(learning_rate=0.1, beta_1=0.8, beta_2=0.99, epsilon=1e-3, weight_decay=0.1)),
    "adamw": ("adamw", dict(learning_rate=0.1)),
    "adamw-amsgrad": ("adamw", dict(learning_rate=0.05, weight_decay=0.5, amsgrad=True)),
    "rmsprop": ("rmsprop", dict(learning_rate=0.1)),
    "rmsprop-centered": ("rmsprop", dict(learning_rate=0.1, centered=True)),
    "rmsprop-momentum": ("rmsprop", dict(learning_rate=0.1, momentum=0.9)),
    "rmsprop-centered-momentum-weight_decay": ("rmsprop", dict(learning_rate=0.1, rho=0.8, centered=True,
                                                               momentum=0.5, weight_decay=0.05)),
    "sgd-nesterov-weight_decay": ("sgd", dict(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
}
KERAS_CLASSES = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop,
                 "sgd": keras.optimizers.SGD}
# Keras's rules computed with the same TensorFlow ops: agreement to rounding, in either precision.
KERAS_TOLERANCE = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def train(optimizer, dtype, gradients=GRADIENTS, runner=lambda fn: fn):
    """Applies each step's gradients to fresh variables holding INITIAL in `dtype`; returns their values."""
    variables = [tf.Variable(value.astype(dtype)) for value in INITIAL]
    step = runner(lambda grads: optimizer.apply_gradients(zip(grads, variables)))
    for grads in gradients:
        step([tf.constant(g.astype(dtype)) for g in grads])
    return [variable.numpy() for variable in variables]


def numpy_rule(name, initial, gradients, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
               amsgrad=False, rho=0.9, momentum=0.0, centered=False, nesterov=False, weight_decay=None):
    """The rules as the papers and Keras's docs write them, in float64, with no TensorFlow.

    The constants Keras rounds to float32 (the learning-rate variable; `tf.cast` of the betas in
    the bias correction, of SGD's momentum and of the weight decay: engine/optimizers/optimizer.py,
    `as_dtype`) are rounded here too, so that float64 results can be compared closely.
    """
    f32 = lambda value: float(np.float32(value))  # noqa: E731
    if name == "adamw" and weight_decay is None:
        weight_decay = 0.004
    learning_rate = f32(learning_rate)
    weights, results = [w.astype(np.float64) for w in initial], []
    slots = [dict(m=np.zeros_like(w), v=np.zeros_like(w), v_hat=np.zeros_like(w), a=np.zeros_like(w))
             for w in weights]
    for t, grads in enumerate(gradients, 1):
        for w, g, s in zip(weights, grads, slots):
            if weight_decay is not None:
                w -= learning_rate * f32(weight_decay) * w
            if name in ("adam", "adamw"):
                s["m"] = beta_1 * s["m"] + (1 - beta_1) * g
                s["v"] = beta_2 * s["v"] + (1 - beta_2) * g ** 2
                s["v_hat"] = np.maximum(s["v_hat"], s["v"])
                v = s["v_hat"] if amsgrad else s["v"]
                alpha = learning_rate * np.sqrt(1 - f32(beta_2) ** t) / (1 - f32(beta_1) ** t)
                w -= alpha * s["m"] / (np.sqrt(v) + epsilon)
            elif name == "rmsprop":
                s["v"] = rho * s["v"] + (1 - rho) * g ** 2
                s["a"] = rho * s["a"] + (1 - rho) * g
                step = learning_rate * g / np.sqrt(s["v"] - (s["a"] ** 2 if centered else 0) + epsilon)
                s["m"] = momentum * s["m"] + step
                w -= s["m"] if momentum else step
            else:
                s["m"] = f32(momentum) * s["m"] - learning_rate * g
                w += f32(momentum) * s["m"] - learning_rate * g if nesterov else s["m"]
        results.append([w.copy() for w in weights])
    return results[-1]


@pytest.mark.parametrize("config", CONFIGS)
def test_several_steps_follow_the_numpy_transcription_of_the_rule(config):
    name, arguments = CONFIGS[config]
    ours = train(optimizers.get(name, **arguments), np.float64)
    for actual, expected in zip(ours, numpy_rule(name, INITIAL, GRADIENTS, **arguments)):
        # The same math in another order of operations: float64 rounding, amplified a little by 6 steps.
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS)
def test_several_steps_match_keras_on_the_same_gradients(config, dtype):
    name, arguments = CONFIGS[config]
    ours = train(optimizers.get(name, **arguments), dtype)
    theirs = train(KERAS_CLASSES[name](**arguments), dtype)
    for actual, expected in zip(ours, theirs):
        np.testing.assert_allclose(actual, expected, **KERAS_TOLERANCE[dtype])


def test_the_variants_really_differ_on_these_gradients():
    """Guards the tests above: configurations that coincided could not catch a mix-up."""
    results = {config: np.concatenate([w.ravel() for w in train(optimizers.get(name, **arguments), np.float64)])
               for config, (name, arguments) in CONFIGS.items()}
    results["adam-beta_2-0.5"] = np.concatenate([w.ravel() for w in train(
        optimizers.Adam(learning_rate=0.1, beta_2=0.5), np.float64)])  # amsgrad's twin without it
    for a in results:
        for b in results:
            if a < b:
                assert np.abs(results[a] - results[b]).max() > 1e-3, (a, b)


@pytest.mark.parametrize("mode", ["graph", "xla"])
@pytest.mark.parametrize("config", ["adam-amsgrad", "adamw", "rmsprop-centered-momentum-weight_decay"])
def test_compiled_steps_give_the_eager_result_and_trace_once(config, mode):
    name, arguments = CONFIGS[config]
    runner = tf.function if mode == "graph" else functools.partial(tf.function, jit_compile=True)
    eager = train(optimizers.get(name, **arguments), np.float32)
    optimizer = optimizers.get(name, **arguments)
    compiled = train(optimizer, np.float32, runner=runner)
    for actual, expected in zip(compiled, eager):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    assert int(optimizer.iterations) == STEPS


# Keras 3's own tests (keras/src/optimizers/{adam,adamw,rmsprop}_test.py, test_single_step and
# test_correctness_with_golden): x = ones(10), one step of gradients 0.01, then steps of
# gradients 0.1, 0.2, ..., 1.0; the value after each step, to 4 decimals as Keras states them.
KERAS_FIRST_GRADIENTS, KERAS_GRADIENTS = np.full(10, 0.01), np.arange(1, 11) / 10
KERAS_GOLDEN = {
    "adam": (dict(amsgrad=True), np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))),
    "adamw": (dict(learning_rate=1.0, weight_decay=0.5, epsilon=2), np.array([
        [0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998],
        [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
        [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
        [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
        [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159]])),
    "rmsprop": (dict(centered=True), np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))),
}
KERAS_SINGLE_STEP = {  # learning_rate=0.5, gradients [1, 6, 7, 2] on [1, 2, 3, 4]
    "adam": [0.5, 1.5, 2.5, 3.5],
    "adamw": [0.4980, 1.4960, 2.494, 3.492],
    "rmsprop": [-0.5811, 0.4189, 1.4189, 2.4189],
}


@pytest.mark.parametrize("name", KERAS_GOLDEN)
def test_the_golden_values_of_keras_own_tests(name):
    arguments, golden = KERAS_GOLDEN[name]
    optimizer = optimizers.get(name, **arguments)
    x = tf.Variable(np.ones(10, np.float32))
    optimizer.apply_gradients([(tf.constant(KERAS_FIRST_GRADIENTS, tf.float32), x)])
    for expected in golden:
        np.testing.assert_allclose(x.numpy(), expected, rtol=5e-4, atol=5e-4)
        optimizer.apply_gradients([(tf.constant(KERAS_GRADIENTS, tf.float32), x)])


@pytest.mark.parametrize("name", KERAS_SINGLE_STEP)
def test_the_single_step_of_keras_own_tests(name):
    x = tf.Variable([1.0, 2.0, 3.0, 4.0])
    optimizers.get(name, learning_rate=0.5).apply_gradients([(tf.constant([1.0, 6.0, 7.0, 2.0]), x)])
    np.testing.assert_allclose(x.numpy(), KERAS_SINGLE_STEP[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_weight_decay_of_keras_own_tests_shrinks_a_weight_with_no_gradient(name):
    """keras/src/optimizers/*_test.py, test_weight_decay: three optimizers with weight_decay=0.004
    and learning rate 1 each decay the same variable once, gradient 0: 2 (1 - 0.004)^3."""
    x = tf.Variable(2.0)
    for _ in range(3):
        optimizers.get(name, learning_rate=1.0, weight_decay=0.004).apply_gradients([(tf.zeros(()), x)])
    assert x.numpy() == pytest.approx(1.9760959, abs=1e-6)


def test_adam_moves_every_weight_by_about_the_learning_rate_whatever_its_gradient_scale():
    """m / sqrt(v) ~ g / |g| with the bias correction: the first step is lr * sign(g) (epsilon aside)."""
    x = tf.Variable([0.0, 0.0, 0.0])
    optimizers.Adam(learning_rate=0.01).apply_gradients([(tf.constant([1e-2, -1.0, 1e3]), x)])
    np.testing.assert_allclose(x.numpy(), [-0.01, 0.01, -0.01], rtol=1e-3)


@pytest.mark.parametrize("name, slots", [
    ("sgd", dict(momentum=0.0)), ("sgd", dict(momentum=0.9)), ("adam", {}), ("adam", dict(amsgrad=True)),
    ("adamw", {}), ("rmsprop", {}), ("rmsprop", dict(momentum=0.5, centered=True)),
])
def test_slots_are_made_once_per_variable_only_for_what_the_settings_use(name, slots):
    optimizer = optimizers.get(name, **slots)
    variables = [tf.Variable(value.astype(np.float32)) for value in INITIAL]
    optimizer.build(variables)
    made = {kind: list(getattr(optimizer, kind)) for kind in optimizer.slot_names}
    train_variables = [(tf.constant(g.astype(np.float32)), v) for g, v in zip(GRADIENTS[0], variables)]
    optimizer.apply_gradients(train_variables)
    for kind in optimizer.slot_names:
        now = getattr(optimizer, kind)
        assert all(a is b for a, b in zip(now, made[kind])) and len(now) == len(made[kind])
        expected = len(variables) if kind in optimizer.slots_used() else 0
        assert len(now) == expected, kind
        assert [slot.shape for slot in now] == [v.shape for v in variables][:expected]
        assert not any(slot.trainable for slot in now)
    keras_slots = KERAS_CLASSES[name](**slots)
    keras_slots.build(variables)
    # Keras keeps the same number of slot variables (its own lists, besides iterations and the rate).
    assert sum(len(getattr(optimizer, kind)) for kind in optimizer.slot_names) == \
        len(keras_slots.variables) - 2


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_defaults_and_config_are_keras_own(name):
    ours, theirs = optimizers.get(name).get_config(), KERAS_CLASSES[name]().get_config()
    assert set(ours) <= set(theirs)
    for argument, value in ours.items():
        assert value == pytest.approx(theirs[argument]) if isinstance(value, float) else value == theirs[argument]


@pytest.mark.parametrize("name", ["sgd", "rmsprop"])
def test_a_tensor_momentum_is_accepted_and_cast_like_the_learning_rate(name):
    """tf-keras's testMomentumTensor passes momentum as a constant (float32) tensor: on float32
    weights it is the same number as the float."""
    with_tensor = train(optimizers.get(name, learning_rate=tf.constant(0.1), momentum=tf.constant(0.9)), np.float32)
    with_float = train(optimizers.get(name, learning_rate=0.1, momentum=0.9), np.float32)
    for a, b in zip(with_tensor, with_float):
        np.testing.assert_array_equal(a, b)
    assert optimizers.get(name, momentum=tf.constant(0.5)).get_config()["momentum"] == 0.5


@pytest.mark.parametrize("name, arguments, message", [
    ("adam", dict(beta_1=1.0), "Adam beta_1 must be a float in [0, 1), got 1.0"),
    ("adam", dict(beta_2=-0.1), "Adam beta_2 must be a float in [0, 1), got -0.1"),
    ("adam", dict(epsilon=-1.0), "Adam epsilon must be a float in [0, inf), got -1.0"),
    ("adam", dict(learning_rate=0.0), "Adam learning_rate must be > 0, got 0.0"),
    ("adamw", dict(weight_decay=None), "AdamW weight_decay must be a float >= 0, got None"),
    ("adamw", dict(weight_decay=-0.1), "AdamW weight_decay must be a float in [0, inf), got -0.1"),
    ("rmsprop", dict(rho=1.5), "RMSprop rho must be a float in [0, 1), got 1.5"),
    ("rmsprop", dict(momentum=True), "RMSprop momentum must be a float in [0, 1), got True"),
    ("sgd", dict(momentum=tf.constant(1.0)), "SGD momentum must be a float in [0, 1), got <tf.Tensor"),
])
def test_an_argument_out_of_range_is_refused_naming_the_optimizer_and_the_value(name, arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        optimizers.get(name, **arguments)


def test_a_gradient_of_the_wrong_shape_is_refused_before_any_variable_moves():
    optimizer, w, v = optimizers.Adam(), tf.Variable(tf.ones([2]), name="w"), tf.Variable(tf.ones([3]), name="v")
    with pytest.raises(ValueError, match=re.escape("Adam got a gradient of shape (2,) for variable 'v:0' of shape (3,)")):
        optimizer.apply_gradients([(tf.ones([2]), w), (tf.ones([2]), v)])
    np.testing.assert_array_equal(w.numpy(), [1.0, 1.0])
    assert int(optimizer.iterations) == 0

"""engine.activations: each function against a float64 NumPy oracle and keras.activations."""

import functools
import re

import hypothesis.extra.numpy as hnp
import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import activations

RUNNERS = {
    "eager": lambda fn: fn,
    "graph": tf.function,
    "xla": functools.partial(tf.function, jit_compile=True),
}

# [batch, classes], spread wide enough that softmax has both dominant and tiny entries.
LOGITS = np.random.default_rng(0).normal(0.0, 3.0, size=(16, 10)).astype(np.float32)

# Rows that overflow a naive exp(z) (exp(89) is inf in float32) or underflow every term.
EXTREME_LOGITS = np.array(
    [
        [1000.0, -1000.0, 0.0],
        [-1000.0, -1000.0, -1000.0],
        [88.0, 89.0, 90.0],
        [-1e30, 0.0, 1e30],
    ],
    dtype=np.float32,
)


def numpy_relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z.astype(np.float64), 0.0)


def numpy_log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(numpy_log_softmax(z))


# (engine function, float64 NumPy oracle, keras.activations function, rtol, atol).
# log_softmax gets atol 1e-6: its float32 result is `shifted - log_sum_exp`, whose rounding
# error is an ulp of the row's largest magnitude (|z - max| reaches ~20 here, ulp ~2e-6
# at worst), so entries near 0 cannot meet a relative bound. Keras' tf.nn.log_softmax
# computes the same subtraction and matches bit for bit, tighter than these bounds.
CASES = {
    "linear": (activations.linear, lambda z: z.astype(np.float64), keras.activations.linear, 0, 0),
    "relu": (activations.relu, numpy_relu, keras.activations.relu, 0, 0),
    "relu_formula": (activations.relu_formula, numpy_relu, keras.activations.relu, 0, 0),
    "softmax": (activations.softmax, numpy_softmax, keras.activations.softmax, 1e-6, 1e-7),
    "log_softmax": (activations.log_softmax, numpy_log_softmax, keras.activations.log_softmax, 1e-6, 1e-6),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_float64_numpy_reference(name):
    fn, oracle, _, rtol, atol = CASES[name]
    np.testing.assert_allclose(fn(tf.constant(LOGITS)).numpy(), oracle(LOGITS), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", CASES)
def test_matches_keras_activation(name):
    fn, _, keras_fn, rtol, atol = CASES[name]
    np.testing.assert_allclose(
        fn(tf.constant(LOGITS)).numpy(), keras_fn(tf.constant(LOGITS)).numpy(), rtol=rtol, atol=atol
    )


@pytest.mark.parametrize("shape", [(7,), (2, 3, 5)], ids=["rank1", "rank3"])
@pytest.mark.parametrize("name", CASES)
def test_preserves_shape_and_acts_on_last_axis_for_any_rank(name, shape):
    fn, oracle, _, rtol, atol = CASES[name]
    z = np.random.default_rng(1).normal(0.0, 3.0, size=shape).astype(np.float32)
    result = fn(tf.constant(z)).numpy()
    assert result.shape == shape
    np.testing.assert_allclose(result, oracle(z), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_graph_and_xla_give_the_eager_result(name, mode):
    fn, _, _, rtol, atol = CASES[name]
    eager = fn(tf.constant(LOGITS)).numpy()
    compiled = RUNNERS[mode](fn)(tf.constant(LOGITS)).numpy()
    np.testing.assert_allclose(compiled, eager, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_extreme_logits_neither_overflow_nor_return_nan(name):
    """The max-subtraction keeps every exponent <= 0, so huge logits stay finite."""
    fn, oracle, keras_fn, rtol, atol = CASES[name]
    result = fn(tf.constant(EXTREME_LOGITS)).numpy()
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, oracle(EXTREME_LOGITS), rtol=rtol, atol=atol)
    np.testing.assert_allclose(result, keras_fn(tf.constant(EXTREME_LOGITS)).numpy(), rtol=rtol, atol=atol)


def test_softmax_of_huge_logit_gap_is_exactly_one_hot():
    np.testing.assert_array_equal(
        activations.softmax(tf.constant([[1000.0, -1000.0, 0.0]])).numpy(), [[1.0, 0.0, 0.0]]
    )


def test_log_softmax_stays_finite_where_log_of_softmax_is_minus_infinity():
    """The reason log_softmax exists: exp(-2000) rounds to 0, log(0) = -inf."""
    z = tf.constant([[1000.0, -1000.0, 0.0]])
    with np.errstate(divide="ignore"):
        assert np.isneginf(np.log(activations.softmax(z).numpy())).any()
    np.testing.assert_array_equal(activations.log_softmax(z).numpy(), [[0.0, -2000.0, -1000.0]])


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
        elements=st.floats(-1e4, 1e4, width=32),
    )
)
def test_softmax_is_a_distribution_and_log_softmax_its_log_for_any_finite_logits(z):
    probabilities = activations.softmax(tf.constant(z)).numpy()
    log_probabilities = activations.log_softmax(tf.constant(z)).numpy()
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(log_probabilities)) and np.all(log_probabilities <= 0)
    # atol grows with |z|: the rounding error of `shifted - log_sum_exp` is an ulp of |z - max|.
    np.testing.assert_allclose(log_probabilities, numpy_log_softmax(z), rtol=1e-6, atol=1e-6 * np.abs(z).max())


@pytest.mark.parametrize("relu", [activations.relu, activations.relu_formula], ids=["relu", "relu_formula"])
def test_relu_gradient_is_one_where_active_and_zero_elsewhere_including_at_zero(relu):
    """At the kink z == 0 the derivative is 0, as tf.nn.relu (and so Keras) defines it."""
    z = tf.constant([-2.0, -0.0, 0.0, 1e-30, 3.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        ours = tf.reduce_sum(relu(z))
        theirs = tf.reduce_sum(keras.activations.relu(z))
    np.testing.assert_array_equal(tape.gradient(ours, z).numpy(), [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(tape.gradient(ours, z).numpy(), tape.gradient(theirs, z).numpy())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_relu_is_its_formula_bit_for_bit_forward_and_backward(dtype):
    """`relu` (TensorFlow's kernel, for speed) and `relu_formula` (the math written out) give the same
    outputs and the same gradients, on values with ties at 0, in every dtype the layers compute in;
    and the manual backward rule gives that gradient too."""
    rng = np.random.default_rng(5)
    z = tf.cast(tf.constant(np.round(rng.normal(size=(64, 33)), 1)), dtype)  # rounding puts exact zeros in
    upstream = tf.cast(tf.constant(rng.normal(size=(64, 33))), dtype)
    assert np.any(z.numpy() == 0)
    results = []
    for relu in (activations.relu, activations.relu_formula):
        with tf.GradientTape() as tape:
            tape.watch(z)
            outputs = relu(z)
        results.append((outputs.numpy(), tape.gradient(outputs, z, output_gradients=upstream).numpy()))
    (kernel_out, kernel_grad), (formula_out, formula_grad) = results
    np.testing.assert_array_equal(kernel_out, formula_out)
    np.testing.assert_array_equal(kernel_grad, formula_grad)
    np.testing.assert_array_equal(kernel_grad, activations.relu_backward(tf.constant(kernel_out), upstream).numpy())


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_gradient_matches_keras(name):
    fn, _, keras_fn, _, _ = CASES[name]
    z = tf.constant(LOGITS)
    weights = tf.constant(np.random.default_rng(2).normal(size=LOGITS.shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        ours = tf.reduce_sum(weights * fn(z))
        theirs = tf.reduce_sum(weights * keras_fn(z))
    # 1e-6 absolute: both are float32 sums over 10 classes of terms up to ~3 in size.
    np.testing.assert_allclose(
        tape.gradient(ours, z).numpy(), tape.gradient(theirs, z).numpy(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", ["linear", "relu", "softmax", "log_softmax"])
def test_get_resolves_each_name_to_its_function(name):
    assert activations.get(name) is getattr(activations, name)


def test_get_of_none_is_linear_as_in_keras():
    assert activations.get(None) is activations.linear


def test_get_returns_a_callable_unchanged():
    assert activations.get(tf.nn.tanh) is tf.nn.tanh


@pytest.mark.parametrize("identifier", ["sigmoid", "Relu", "", 3])
def test_get_rejects_unknown_names_and_non_callables_listing_the_valid_names(identifier):
    expected = (
        f"Unknown activation {identifier!r}: expected None, one of "
        "['linear', 'log_softmax', 'relu', 'softmax'], or a callable"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        activations.get(identifier)

"""engine.initializers: Glorot's limit from first principles, Keras's samples' statistics, seeding."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import initializers

# (shape, fan_in, fan_out), the fans worked out by hand: a Dense kernel is (in, units); a
# conv kernel (h, w, in, out) multiplies both fans by its receptive field h * w.
# Each shape has >= 70k entries, enough for tight sample statistics.
GLOROT_SHAPES = [
    ((784, 128), 784, 128),
    ((3, 3, 64, 128), 3 * 3 * 64, 3 * 3 * 128),
]
GLOROT_IDS = ["dense_784x128", "conv_3x3x64x128"]


@pytest.mark.parametrize("shape, fan_in, fan_out", GLOROT_SHAPES, ids=GLOROT_IDS)
def test_glorot_uniform_fills_the_interval_plus_minus_sqrt_6_over_fan_sum(shape, fan_in, fan_out):
    """U(-a, a) has mean 0 and std a / sqrt(3); with ~1e5 samples the extremes lie within
    0.1% of +-a (probability of missing: (1 - 5e-4)^1e5 ~ e^-50)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    weights = initializers.glorot_uniform(shape).numpy()
    assert weights.shape == shape and weights.dtype == np.float32
    assert np.abs(weights).max() <= limit
    assert weights.max() > 0.999 * limit and weights.min() < -0.999 * limit
    # Sampling error of the std is ~0.15% and of the mean ~0.2% of the limit at this size.
    assert weights.std() == pytest.approx(limit / math.sqrt(3.0), rel=0.01)
    assert abs(weights.mean()) < 0.01 * limit


@pytest.mark.parametrize("shape, fan_in, fan_out", GLOROT_SHAPES, ids=GLOROT_IDS)
def test_glorot_uniform_has_the_statistics_of_keras_glorot_uniform(shape, fan_in, fan_out):
    """Keras is sampled with another seed, so the two agree as distributions, not by
    sharing a random stream; tolerances are the sampling error (see above)."""
    del fan_in, fan_out
    ours = initializers.glorot_uniform(shape, seed=0).numpy()
    theirs = keras.initializers.GlorotUniform(seed=1234)(shape).numpy()
    limit = np.abs(theirs).max()
    assert ours.max() == pytest.approx(theirs.max(), rel=2e-3)
    assert ours.min() == pytest.approx(theirs.min(), rel=2e-3)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.01)
    assert abs(ours.mean() - theirs.mean()) < 0.01 * limit


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64])
def test_glorot_uniform_returns_the_requested_dtype_within_the_limit(dtype):
    limit = math.sqrt(6.0 / (20 + 30))
    weights = initializers.glorot_uniform((20, 30), dtype=dtype)
    assert weights.dtype == dtype
    values = tf.cast(weights, tf.float64).numpy()
    # float16/bfloat16 round the limit itself, by up to half an ulp (2^-8 relative for bfloat16).
    assert np.abs(values).max() <= limit * (1 + 2.0**-8)
    assert values.std() > 0


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_glorot_uniform_is_reproducible_from_its_seed(seed):
    first = initializers.glorot_uniform((50, 40), seed=seed).numpy()
    second = initializers.glorot_uniform((50, 40), seed=seed).numpy()
    np.testing.assert_array_equal(first, second)


def test_glorot_uniform_gives_the_same_weights_in_a_graph_as_eagerly():
    """Stateless sampling is a pure function of (shape, seed), so tracing does not change it."""
    eager = initializers.glorot_uniform((50, 40), seed=7).numpy()
    traced = tf.function(lambda: initializers.glorot_uniform((50, 40), seed=7))().numpy()
    np.testing.assert_array_equal(traced, eager)


@pytest.mark.parametrize("seed_a, seed_b", [(0, 1), (1, 2), (0, 12345)])
def test_glorot_uniform_with_different_seeds_gives_different_weights(seed_a, seed_b):
    a = initializers.glorot_uniform((50, 40), seed=seed_a).numpy()
    b = initializers.glorot_uniform((50, 40), seed=seed_b).numpy()
    # Not merely "not all equal": independent streams share (almost) no values.
    assert np.mean(a == b) < 0.01


@pytest.mark.parametrize("shape", [(), (5,)])
def test_glorot_uniform_rejects_shapes_without_two_fan_dimensions(shape):
    expected = f"glorot_uniform needs a shape of rank >= 2, got {shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        initializers.glorot_uniform(shape)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name, keras_class, fill", [("zeros", keras.initializers.Zeros, 0.0),
                                                     ("ones", keras.initializers.Ones, 1.0)])
def test_constant_initializers_match_keras_for_any_shape_and_dtype(name, keras_class, fill, shape, dtype):
    ours = getattr(initializers, name)(shape, dtype=dtype)
    theirs = keras_class()(shape, dtype=dtype.name)
    assert ours.dtype == dtype and ours.shape == shape
    np.testing.assert_array_equal(ours.numpy(), np.full(shape, fill))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_zeros_accepts_and_ignores_a_seed_so_all_initializers_share_a_signature():
    np.testing.assert_array_equal(initializers.zeros((3,), tf.float32, 99).numpy(), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("name", ["glorot_uniform", "ones", "zeros"])
def test_get_resolves_each_name_to_its_function(name):
    assert initializers.get(name) is getattr(initializers, name)


def test_get_returns_a_callable_unchanged():
    def custom(shape, dtype=tf.float32, seed=0):
        return tf.ones(shape, dtype)

    assert initializers.get(custom) is custom


@pytest.mark.parametrize("identifier", ["he_normal", "Zeros", None, 0.5])
def test_get_rejects_unknown_names_and_non_callables_listing_the_valid_names(identifier):
    expected = (
        f"Unknown initializer {identifier!r}: expected one of ['glorot_uniform', 'ones', 'zeros'] or a callable"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        initializers.get(identifier)

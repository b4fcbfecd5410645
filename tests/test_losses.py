"""engine.losses against float64 NumPy oracles and keras.losses.

Keras 3's cross-entropy switches to the logits when its input came out of
`keras.activations.softmax` (the output carries a hidden attribute, `_keras_logits`). So every
comparison with Keras on probabilities goes through `plain(...)`, which strips it. The engine
carries nothing on a tensor: the training step hands the loss the model's logits in plain code
(`losses.output_loss`), pinned down by the tests at the end, beside each loss's backward rule.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import activations, losses

EPSILON = 1e-7  # keras.backend.epsilon(), the clip bound for probabilities
CLASSES = 10

_rng = np.random.default_rng(0)
LOGITS = _rng.normal(0.0, 2.0, size=(32, CLASSES)).astype(np.float32)  # [batch, classes]
LABELS = _rng.integers(0, CLASSES, size=32)  # [batch]
SOFT_LABELS = _rng.dirichlet(np.ones(CLASSES), size=32).astype(np.float32)  # rows sum to 1
RNG_TARGETS = _rng.normal(size=(32, CLASSES)).astype(np.float32)  # regression targets

RUNNERS = {
    "eager": lambda fn: fn,
    "graph": tf.function,
    "xla": functools.partial(tf.function, jit_compile=True),
}


def plain(probabilities) -> tf.Tensor:
    """A probability tensor Keras cannot trace back to logits."""
    tensor = tf.identity(probabilities)
    assert not hasattr(tensor, "_keras_logits")
    return tensor


def numpy_log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_clip(p: np.ndarray) -> np.ndarray:
    # The bounds as float32 holds them: float32(1 - 1e-7) is 1 - 2^-23, not 1 - 1e-7.
    return np.clip(p.astype(np.float64), np.float32(EPSILON), np.float32(1.0 - EPSILON))


def numpy_sparse_ce(labels, y_pred, from_logits):
    """Per example `-log p[y]`; from probabilities, Keras's rule: clip, then renormalise."""
    if from_logits:
        log_p = numpy_log_softmax(y_pred)
    else:
        clipped = numpy_clip(y_pred)
        log_p = np.log(clipped / clipped.sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def numpy_categorical_ce(targets, y_pred, from_logits):
    """Per example `-sum_c y_c log p_c`; from probabilities, Keras's rule: renormalise, then clip."""
    if from_logits:
        log_p = numpy_log_softmax(y_pred)
    else:
        y_pred = y_pred.astype(np.float64)
        log_p = np.log(numpy_clip(y_pred / y_pred.sum(axis=-1, keepdims=True)))
    return -(targets.astype(np.float64) * log_p).sum(axis=-1)


def numpy_softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(numpy_log_softmax(z))


PROBABILITIES = numpy_softmax(LOGITS).astype(np.float32)
ONE_HOT = np.eye(CLASSES, dtype=np.float32)[LABELS]

# Rows that hit both clip bounds: the true class has probability exactly 1 (loss ~0) or
# exactly 0 (loss -log(1e-7) ~ 16.12 instead of inf).
EDGE_PROBABILITIES = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], np.float32)
EDGE_LABELS = np.array([0, 1, 0])
EDGE_ONE_HOT = np.eye(3, dtype=np.float32)[EDGE_LABELS]


def keras_sparse(labels, y_pred, from_logits):
    return keras.losses.sparse_categorical_crossentropy(tf.constant(labels), y_pred, from_logits=from_logits)


def keras_categorical(targets, y_pred, from_logits):
    return keras.losses.categorical_crossentropy(tf.constant(targets), y_pred, from_logits=from_logits)


SPARSE = (losses.sparse_categorical_crossentropy, numpy_sparse_ce, keras_sparse)
CATEGORICAL = (losses.categorical_crossentropy, numpy_categorical_ce, keras_categorical)

# name -> (engine loss, NumPy oracle, Keras per-example loss, labels, predictions, from_logits)
CROSS_ENTROPY_CASES = {
    "sparse-probabilities": (*SPARSE, LABELS, PROBABILITIES, False),
    "sparse-logits": (*SPARSE, LABELS, LOGITS, True),
    "sparse-edge-probabilities": (*SPARSE, EDGE_LABELS, EDGE_PROBABILITIES, False),
    "categorical-probabilities": (*CATEGORICAL, ONE_HOT, PROBABILITIES, False),
    "categorical-logits": (*CATEGORICAL, ONE_HOT, LOGITS, True),
    "categorical-soft-labels": (*CATEGORICAL, SOFT_LABELS, PROBABILITIES, False),
    "categorical-soft-labels-logits": (*CATEGORICAL, SOFT_LABELS, LOGITS, True),
    "categorical-edge-probabilities": (*CATEGORICAL, EDGE_ONE_HOT, EDGE_PROBABILITIES, False),
}


@pytest.mark.parametrize("name", CROSS_ENTROPY_CASES)
def test_cross_entropy_is_the_batch_mean_of_the_numpy_reference(name):
    loss_fn, oracle, _, labels, y_pred, from_logits = CROSS_ENTROPY_CASES[name]
    loss = loss_fn(labels, tf.constant(y_pred), from_logits=from_logits)
    assert loss.shape == () and loss.dtype == tf.float32
    np.testing.assert_allclose(loss.numpy(), oracle(labels, y_pred, from_logits).mean(), rtol=1e-6)


@pytest.mark.parametrize("name", CROSS_ENTROPY_CASES)
def test_cross_entropy_matches_keras_on_plain_tensors(name):
    loss_fn, _, keras_fn, labels, y_pred, from_logits = CROSS_ENTROPY_CASES[name]
    ours = loss_fn(labels, plain(y_pred), from_logits=from_logits).numpy()
    theirs = keras_fn(labels, plain(y_pred), from_logits).numpy().mean()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize(
    "loss_fn, keras_loss",
    [
        (losses.sparse_categorical_crossentropy, keras.losses.SparseCategoricalCrossentropy()),
        (losses.categorical_crossentropy, keras.losses.CategoricalCrossentropy()),
    ],
    ids=["sparse", "categorical"],
)
def test_reduction_is_keras_sum_over_batch_size(loss_fn, keras_loss):
    labels = LABELS if loss_fn is losses.sparse_categorical_crossentropy else ONE_HOT
    np.testing.assert_allclose(
        loss_fn(labels, plain(PROBABILITIES)).numpy(), keras_loss(labels, plain(PROBABILITIES)).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("true_probability, expected", [(1.0, 0.0), (0.0, -np.log(EPSILON))], ids=["p=1", "p=0"])
@pytest.mark.parametrize(
    "loss_fn, labels",
    [(losses.sparse_categorical_crossentropy, [0]), (losses.categorical_crossentropy, [[1.0, 0.0, 0.0]])],
    ids=["sparse", "categorical"],
)
def test_probability_exactly_zero_or_one_gives_a_finite_clipped_loss(loss_fn, labels, true_probability, expected):
    """log(0) would be inf; the clip to [1e-7, 1 - 1e-7] bounds the loss at -log(1e-7) ~ 16.12."""
    y_pred = [[true_probability, 1.0 - true_probability, 0.0]]
    loss = loss_fn(labels, tf.constant(y_pred)).numpy()
    assert np.isfinite(loss)
    # atol 1e-6: at p = 1 the loss is a few float32 ulps of 1 (Keras gets 1.2e-7 or
    # 2.4e-7), pure rounding of log(1 - 2^-23) and of the renormalisation.
    assert loss == pytest.approx(expected, rel=1e-6, abs=1e-6)
    keras_fn = keras_sparse if loss_fn is losses.sparse_categorical_crossentropy else keras_categorical
    np.testing.assert_allclose(loss, keras_fn(np.array(labels), plain(y_pred), False).numpy().mean(), rtol=1e-6)


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.float32], ids=["int32", "int64", "float32"])
@pytest.mark.parametrize("label_shape", ["[batch]", "[batch, 1]"])
def test_sparse_labels_of_any_integer_like_dtype_and_keras_shapes_are_accepted(label_dtype, label_shape):
    labels = LABELS.astype(label_dtype)
    if label_shape == "[batch, 1]":
        labels = labels[:, None]
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(tf.constant(labels), PROBABILITIES).numpy(),
        numpy_sparse_ce(LABELS, PROBABILITIES, from_logits=False).mean(),
        rtol=1e-6,
    )


def test_categorical_renormalises_rows_that_do_not_sum_to_one():
    """Scaling a row of probabilities (e.g. an un-normalised output) does not change the loss."""
    scaled = PROBABILITIES * np.linspace(0.5, 3.0, len(PROBABILITIES), dtype=np.float32)[:, None]
    np.testing.assert_allclose(
        losses.categorical_crossentropy(ONE_HOT, scaled).numpy(),
        losses.categorical_crossentropy(ONE_HOT, PROBABILITIES).numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        losses.categorical_crossentropy(ONE_HOT, scaled).numpy(),
        keras.losses.categorical_crossentropy(ONE_HOT, plain(scaled)).numpy().mean(),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "loss_fn, labels",
    [(losses.sparse_categorical_crossentropy, [0, 1, 2]), (losses.categorical_crossentropy, np.eye(3, dtype=np.float32))],
    ids=["sparse", "categorical"],
)
def test_huge_logits_give_the_exact_finite_loss_and_gradient(loss_fn, labels):
    """Row [1000, -1000, 0]: -log_softmax is [0, 2000, 1000], so the mean loss is 1000."""
    logits = tf.constant([[1000.0, -1000.0, 0.0]] * 3)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = loss_fn(labels, logits, from_logits=True)
    gradient = tape.gradient(loss, logits).numpy()
    assert loss.numpy() == pytest.approx(1000.0, rel=1e-6)
    assert np.all(np.isfinite(gradient))
    # softmax is [1, 0, 0] to float32 precision; rtol covers float32's rounding of 1/3.
    np.testing.assert_allclose(gradient, (np.array([[1.0, 0, 0]] * 3) - np.eye(3)) / 3, rtol=1e-6, atol=0)
    keras_fn = keras_sparse if loss_fn is losses.sparse_categorical_crossentropy else keras_categorical
    np.testing.assert_allclose(loss.numpy(), keras_fn(np.array(labels), logits, True).numpy().mean(), rtol=1e-6)


@pytest.mark.parametrize(
    "loss_fn, keras_loss, labels, targets",
    [
        (
            losses.sparse_categorical_crossentropy,
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            LABELS,
            ONE_HOT,
        ),
        (
            losses.categorical_crossentropy,
            keras.losses.CategoricalCrossentropy(from_logits=True),
            SOFT_LABELS,
            SOFT_LABELS,
        ),
    ],
    ids=["sparse", "categorical-soft-labels"],
)
def test_gradient_wrt_logits_is_softmax_minus_target_over_batch(loss_fn, keras_loss, labels, targets):
    """The backprop identity behind every classifier: d mean_i CE_i / d z = (softmax(z) - y) / batch."""
    logits = tf.constant(LOGITS)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = loss_fn(labels, logits, from_logits=True)
        theirs = keras_loss(labels, logits)
    gradient = tape.gradient(ours, logits).numpy()
    expected = (numpy_softmax(LOGITS) - targets.astype(np.float64)) / len(LOGITS)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gradient, tape.gradient(theirs, logits).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "y_pred, labels",
    [(PROBABILITIES, LABELS), (EDGE_PROBABILITIES, EDGE_LABELS)],
    ids=["ordinary", "edge-0-and-1"],
)
def test_gradient_wrt_probabilities_matches_keras_on_plain_tensors(y_pred, labels):
    """Including the clip's zero gradient for a true-class probability below 1e-7."""
    probabilities = tf.constant(y_pred)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(probabilities)
        ours = losses.sparse_categorical_crossentropy(labels, probabilities)
        theirs = tf.reduce_mean(keras_sparse(labels, plain(probabilities), False))
    gradient = tape.gradient(ours, probabilities).numpy()
    np.testing.assert_allclose(gradient, tape.gradient(theirs, probabilities).numpy(), rtol=1e-6, atol=1e-7)
    if y_pred is EDGE_PROBABILITIES:
        assert gradient[1, 1] == 0.0 and gradient[2, 0] == 0.0  # true class at p = 0: clipped


@pytest.mark.parametrize("shape", [(8, 1), (8, 5), (4, 3, 5)])
def test_mean_squared_error_matches_numpy_and_keras(shape):
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=shape).astype(np.float32)
    y_pred = rng.normal(size=shape).astype(np.float32)
    loss = losses.mean_squared_error(y_true, tf.constant(y_pred))
    assert loss.shape == ()
    np.testing.assert_allclose(
        loss.numpy(), np.mean((y_true.astype(np.float64) - y_pred.astype(np.float64)) ** 2), rtol=1e-6
    )
    np.testing.assert_allclose(loss.numpy(), keras.losses.MeanSquaredError()(y_true, y_pred).numpy(), rtol=1e-6)


def test_mean_squared_error_of_a_perfect_prediction_is_zero_and_its_gradient_is_the_error():
    y_true = tf.constant([[1.0, -2.0], [0.5, 3.0]])
    y_pred = tf.constant([[1.0, -2.0], [1.5, 3.0]])
    assert losses.mean_squared_error(y_true, y_true).numpy() == 0.0
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        loss = losses.mean_squared_error(y_true, y_pred)
    # d/dy_hat mean((y - y_hat)^2) over 4 elements = 2 (y_hat - y) / 4
    np.testing.assert_array_equal(tape.gradient(loss, y_pred).numpy(), [[0.0, 0.0], [0.5, 0.0]])


@pytest.mark.parametrize(
    "name", ["sparse-probabilities", "sparse-logits", "categorical-probabilities", "categorical-logits"]
)
@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_graph_and_xla_give_the_eager_loss(name, mode):
    loss_fn, _, _, labels, y_pred, from_logits = CROSS_ENTROPY_CASES[name]
    compiled = RUNNERS[mode](lambda y, p: loss_fn(y, p, from_logits=from_logits))
    np.testing.assert_allclose(
        compiled(tf.constant(labels), tf.constant(y_pred)).numpy(),
        loss_fn(labels, tf.constant(y_pred), from_logits=from_logits).numpy(),
        rtol=1e-6,
    )


# The softmax route. Keras hides the logits on its softmax's output; the engine never does: the
# step asks the model for its logits and calls `output_loss`, which a reader can follow.

SATURATED_LOGITS = tf.constant([[30.0, 0.0, -5.0]])  # label 2: p = e^-35 ~ 6e-16, far below 1e-7


def test_keras_softmax_output_carries_its_logits_and_plain_tensors_do_not():
    """The premise of every `plain(...)` above; if Keras drops the attribute, revisit them."""
    output = keras.activations.softmax(tf.constant(LOGITS))
    assert hasattr(output, "_keras_logits")
    assert not hasattr(tf.identity(output), "_keras_logits")
    assert not hasattr(tf.constant(output.numpy()), "_keras_logits")


def test_our_softmax_output_is_a_plain_tensor_so_a_tf_identity_changes_no_loss():
    """What a learner tries: put tf.identity between the softmax and the loss. Nothing is hidden on
    the tensor, so the loss of probabilities is the loss of probabilities, either way."""
    probabilities = activations.softmax(SATURATED_LOGITS)
    assert not hasattr(probabilities, "_keras_logits")
    direct = losses.sparse_categorical_crossentropy([2], probabilities)
    through_identity = losses.sparse_categorical_crossentropy([2], tf.identity(probabilities))
    assert direct.numpy() == through_identity.numpy() == pytest.approx(-np.log(EPSILON), rel=1e-6)


@pytest.mark.parametrize("loss_fn, labels", [(losses.sparse_categorical_crossentropy, [2]),
                                              (losses.categorical_crossentropy, [[0.0, 0.0, 1.0]])],
                         ids=["sparse", "categorical"])
def test_output_loss_scores_a_softmax_output_from_its_logits_exactly_as_keras_does(loss_fn, labels):
    """Keras returns the exact 35 (not the clipped 16.12) for a saturated softmax output, and a
    gradient p - onehot that does not vanish; `output_loss` on the logits gives the same."""
    exact = numpy_sparse_ce([2], SATURATED_LOGITS.numpy(), from_logits=True)[0]  # 35 + log(1 + e^-30 + e^-35)
    keras_loss = keras.losses.get(loss_fn.__name__)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(SATURATED_LOGITS)
        ours = losses.output_loss(loss_fn, labels, SATURATED_LOGITS, activations.softmax)
        theirs = keras_loss(tf.constant(labels), keras.activations.softmax(SATURATED_LOGITS))[0]
    np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-6)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    expected_gradient = numpy_softmax(SATURATED_LOGITS.numpy()) - np.eye(3)[2]
    np.testing.assert_allclose(tape.gradient(ours, SATURATED_LOGITS).numpy(), expected_gradient, atol=1e-7)
    np.testing.assert_allclose(tape.gradient(theirs, SATURATED_LOGITS).numpy(), expected_gradient, atol=1e-7)
    rule = losses.output_loss_backward(loss_fn, labels, SATURATED_LOGITS, activations.softmax)
    np.testing.assert_allclose(rule.numpy(), expected_gradient, atol=1e-7)


def test_output_loss_scores_the_outputs_for_any_other_activation_or_loss():
    """The logits route is softmax + cross-entropy only: a softmax over another axis, or another loss,
    scores `activation(logits)` as given."""
    z = tf.constant(LOGITS[:4, :3])
    over_rows = functools.partial(activations.softmax, axis=0)
    assert losses.output_loss(losses.sparse_categorical_crossentropy, [0, 1, 2, 0], z, over_rows).numpy() == \
        losses.sparse_categorical_crossentropy([0, 1, 2, 0], over_rows(z)).numpy()
    targets = tf.constant(RNG_TARGETS[:4, :3])
    assert losses.output_loss(losses.mean_squared_error, targets, z, activations.softmax).numpy() == \
        losses.mean_squared_error(targets, activations.softmax(z)).numpy()


def test_the_same_probabilities_as_a_plain_tensor_are_clipped_by_both():
    probabilities = plain(activations.softmax(SATURATED_LOGITS))
    ours = losses.sparse_categorical_crossentropy([2], probabilities).numpy()
    np.testing.assert_allclose(ours, keras_sparse([2], probabilities, False).numpy()[0], rtol=1e-6)
    assert ours == pytest.approx(-np.log(EPSILON), rel=1e-6)


def test_the_logits_rule_is_bit_for_bit_the_fused_keras_kernel_on_most_batches():
    """Our written-out derivative `(softmax(z) - onehot) / batch` vs tf.nn's fused kernel (what Keras
    calls): identical in the large majority of batches; the rest differ in the last bit of a few
    elements, because the kernel sums the exponentials in a different order. The tape, which
    differentiates log, exp and the division one op at a time, stays within a few float32 ulps.
    Those last-bit differences are what engine/compare/parity.py measures growing over thousands of steps."""
    rng = np.random.default_rng(1)
    identical = 0
    for _ in range(50):
        z = tf.constant(rng.normal(scale=3.0, size=(32, 10)).astype(np.float32))
        y = rng.integers(0, 10, size=32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            ours = losses.sparse_categorical_crossentropy(y, z, from_logits=True)
            theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z)
        kernel = tape.gradient(theirs, z).numpy()
        rule = losses.sparse_categorical_crossentropy_backward(y, z, from_logits=True).numpy()
        assert np.abs(rule - kernel).max() <= 1e-8
        assert np.abs(tape.gradient(ours, z).numpy() - kernel).max() <= 1e-8
        identical += int(np.abs(rule - kernel).max() == 0.0)
    assert identical >= 35, identical


# Each loss's backward rule against the tape and against central differences in float64.

BACKWARD_CASES = {
    "sparse-logits": (losses.sparse_categorical_crossentropy, LABELS, LOGITS, True),
    "sparse-probabilities": (losses.sparse_categorical_crossentropy, LABELS, None, False),
    "categorical-logits": (losses.categorical_crossentropy, SOFT_LABELS, LOGITS, True),
    "categorical-probabilities": (losses.categorical_crossentropy, SOFT_LABELS, None, False),
}


@pytest.mark.parametrize("name", sorted(BACKWARD_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_cross_entropy_backward_rule_is_the_tapes_gradient(name, dtype):
    loss_fn, labels, logits, from_logits = BACKWARD_CASES[name]
    y_pred = tf.constant((LOGITS if from_logits else PROBABILITIES * 1.3).astype(dtype))  # unnormalised rows too
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        loss = loss_fn(labels, y_pred, from_logits=from_logits)
    rule = losses.backward(functools.partial(loss_fn, from_logits=from_logits))(labels, y_pred)
    assert rule.dtype == y_pred.dtype and rule.shape == y_pred.shape
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(rule.numpy(), tape.gradient(loss, y_pred).numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("shape", [(8, 1), (8, 5), (4, 3, 5), (8,)])
def test_the_mean_squared_error_rule_is_the_tapes_gradient_in_the_predictions_shape(shape):
    rng = np.random.default_rng(7)
    y_true = rng.normal(size=shape)
    y_pred = tf.constant(rng.normal(size=shape))
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        loss = losses.mean_squared_error(y_true, y_pred)
    rule = losses.mean_squared_error_backward(y_true, y_pred)
    np.testing.assert_allclose(rule.numpy(), tape.gradient(loss, y_pred).numpy(), rtol=1e-12, atol=1e-15)


def test_a_clipped_probability_gets_the_zero_gradient_the_clip_gives_from_the_rule_too():
    rule = losses.sparse_categorical_crossentropy_backward(EDGE_LABELS, tf.constant(EDGE_PROBABILITIES)).numpy()
    assert rule[1, 1] == 0.0 and rule[2, 0] == 0.0  # true class at p = 0: the clip stops it
    probabilities = tf.constant(EDGE_PROBABILITIES)
    with tf.GradientTape() as tape:
        tape.watch(probabilities)
        loss = losses.sparse_categorical_crossentropy(EDGE_LABELS, probabilities)
    np.testing.assert_allclose(rule, tape.gradient(loss, probabilities).numpy(), rtol=1e-6, atol=1e-7)


def test_a_loss_without_a_rule_has_none_and_a_partial_of_a_listed_loss_keeps_its_keywords():
    assert losses.backward(lambda y, p: tf.reduce_mean(p)) is None
    rule = losses.backward(functools.partial(losses.sparse_categorical_crossentropy, from_logits=True))
    np.testing.assert_array_equal(rule(LABELS, tf.constant(LOGITS)).numpy(),
                                  losses.sparse_categorical_crossentropy_backward(LABELS, tf.constant(LOGITS), True).numpy())

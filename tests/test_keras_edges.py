"""Issue 13, losses and accuracy: on the edges (label shapes (n,) and (n, 1), float16/32/64,
N-D predictions, mismatched shapes) they give Keras's value or Keras's kind of error. Each test
feeds the same inputs to the engine and to `keras`, in eager, graph and XLA modes where a step
uses them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import losses, metrics, optimizers

MODES = {"eager": lambda f: f, "graph": tf.function, "xla": lambda f: tf.function(f, jit_compile=True)}
DTYPES = [np.float16, np.float32, np.float64]
RNG = np.random.default_rng(13)
PROBABILITIES = RNG.dirichlet(np.ones(4), size=6).astype(np.float32)  # [6, 4]
LABELS = PROBABILITIES.argmax(-1)  # perfectly classified


def accuracy_of(y_true, y_pred, mode: str) -> float:
    metric = metrics.SparseCategoricalAccuracy()
    MODES[mode](lambda t, p: metric.update_state(t, p))(tf.constant(y_true), tf.constant(y_pred))
    return float(metric.result())


def keras_accuracy_of(y_true, y_pred) -> float:
    metric = keras.metrics.SparseCategoricalAccuracy()
    metric.update_state(y_true, y_pred)
    return float(metric.result())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("label_shape", [(6,), (6, 1)], ids=["labels-n", "labels-n-1"])
def test_accuracy_takes_labels_n_and_n_1_as_keras_does(label_shape, mode):
    labels = LABELS.reshape(label_shape)
    assert accuracy_of(labels, PROBABILITIES, mode) == keras_accuracy_of(labels, PROBABILITIES) == 1.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trailing_one", [False, True], ids=["labels-b-h-w", "labels-b-h-w-1"])
def test_accuracy_scores_n_d_predictions_per_position_as_keras_does(trailing_one, mode):
    y_pred = RNG.random((2, 3, 5, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=(2, 3, 5, 1) if trailing_one else (2, 3, 5))
    assert accuracy_of(labels, y_pred, mode) == pytest.approx(keras_accuracy_of(labels, y_pred), abs=1e-7)


def loss_in(mode: str, loss, y_true, y_pred, **kwargs) -> np.ndarray:
    return MODES[mode](lambda t, p: loss(t, p, **kwargs))(tf.constant(y_true), tf.constant(y_pred)).numpy()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("from_logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize("label_shape", [(2, 3, 5), (2, 3, 5, 1)], ids=["labels-b-h-w", "labels-b-h-w-1"])
def test_sparse_cross_entropy_is_the_mean_per_pixel_loss_on_n_d_predictions(label_shape, from_logits, mode):
    scores = RNG.normal(size=(2, 3, 5, 4)).astype(np.float32)
    y_pred = scores if from_logits else keras.ops.convert_to_numpy(keras.activations.softmax(scores))
    labels = RNG.integers(0, 4, size=label_shape)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, y_pred)
    got = loss_in(mode, losses.sparse_categorical_crossentropy, labels, y_pred, from_logits=from_logits)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, ours, theirs, targets", [
    ("sparse", losses.sparse_categorical_crossentropy, keras.losses.SparseCategoricalCrossentropy(), LABELS),
    ("sparse-n-1", losses.sparse_categorical_crossentropy, keras.losses.SparseCategoricalCrossentropy(), LABELS[:, None]),
    ("categorical", losses.categorical_crossentropy, keras.losses.CategoricalCrossentropy(), np.eye(4)[LABELS]),
    ("mse", losses.mean_squared_error, keras.losses.MeanSquaredError(), np.eye(4)[LABELS]),
])
def test_every_loss_computes_float16_in_float32_and_float32_64_in_their_own_dtype(name, ours, theirs, targets, dtype):
    """As keras.losses' functions do (a Keras loss class computes in its `dtype`, float32 unless told):
    half precision would lose the loss's digits; float64 keeps them for a numerical gradient check."""
    y_pred = PROBABILITIES.astype(dtype)
    got = ours(targets.astype(dtype) if targets.dtype.kind == "f" else targets, y_pred)
    expected_dtype = tf.float64 if dtype == np.float64 else tf.float32
    assert got.dtype == expected_dtype
    keras_loss = type(theirs).from_config({**theirs.get_config(), "dtype": expected_dtype.name})
    np.testing.assert_allclose(got.numpy(), keras_loss(targets, y_pred).numpy(), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("true_shape, pred_shape", [((3,), (3, 1)), ((3, 1), (3,)), ((2, 3, 1), (2, 3)), ((2, 3), (2, 3, 1))])
def test_mean_squared_error_pairs_n_with_n_1_row_by_row_as_keras_does(true_shape, pred_shape, mode):
    y_true = np.array([1.0, 2.0, 3.0, 4.0, -1.0, 0.5], np.float32)[:np.prod(true_shape)].reshape(true_shape)
    y_pred = np.array([10.0, 2.0, -5.0, 1.0, 0.0, 2.0], np.float32)[:np.prod(pred_shape)].reshape(pred_shape)
    expected = keras.losses.MeanSquaredError()(y_true, y_pred)
    np.testing.assert_allclose(loss_in(mode, losses.mean_squared_error, y_true, y_pred), expected, rtol=1e-6)


MISMATCHED = [
    ("sparse, labels of another batch", losses.sparse_categorical_crossentropy,
     keras.losses.SparseCategoricalCrossentropy(), np.zeros(3, np.int32), np.full((2, 3), 1 / 3, np.float32)),
    ("sparse, labels of the predictions' rank", losses.sparse_categorical_crossentropy,
     keras.losses.SparseCategoricalCrossentropy(), np.zeros((3, 2), np.int32), np.full((3, 3), 1 / 3, np.float32)),
    ("categorical, labels (3, 1)", losses.categorical_crossentropy,
     keras.losses.CategoricalCrossentropy(), np.ones((3, 1), np.float32), np.full((3, 3), 1 / 3, np.float32)),
    ("categorical, another batch", losses.categorical_crossentropy,
     keras.losses.CategoricalCrossentropy(), np.full((2, 3), 1 / 3, np.float32), np.full((3, 3), 1 / 3, np.float32)),
]


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("case, ours, theirs, y_true, y_pred", MISMATCHED, ids=[case[0] for case in MISMATCHED])
def test_cross_entropies_raise_a_value_error_on_mismatched_shapes_as_keras_does(case, ours, theirs, y_true, y_pred, mode):
    with pytest.raises(ValueError, match=r"expected .* shape .*, got"):
        loss_in(mode, ours, y_true, y_pred)
    with pytest.raises(ValueError):
        theirs(y_true, y_pred)


def test_mean_squared_error_names_both_shapes_where_keras_fails_inside_tensorflow():
    y_true, y_pred = np.ones((3, 2), np.float32), np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"mean_squared_error expected y_true of the shape of y_pred \(3, 3\), got \(3, 2\)"):
        losses.mean_squared_error(y_true, y_pred)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        keras.losses.MeanSquaredError()(y_true, y_pred)


@pytest.mark.parametrize("mode", MODES)
def test_a_users_training_step_on_labels_n_1_gives_the_numbers_of_labels_n(mode):
    from layers import mlp

    images = tf.constant(RNG.random((16, 4, 4)).astype(np.float32))
    labels = RNG.integers(0, 3, size=16)
    results = []
    for shaped in (labels, labels[:, None]):
        tf.random.set_seed(5)
        model, sgd, accuracy = mlp((8,), 3), optimizers.SGD(0.1), metrics.SparseCategoricalAccuracy()
        model.build((None, 4, 4))

        def step(x, y):
            with tf.GradientTape() as tape:
                predictions = model(x)
                loss = losses.sparse_categorical_crossentropy(y, predictions)
            sgd.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            accuracy.update_state(y, predictions)
            return loss

        step = MODES[mode](step)
        step_losses = [float(step(images, tf.constant(shaped))) for _ in range(3)]
        results.append((step_losses, float(accuracy.result()), [v.numpy().tolist() for v in model.trainable_variables]))
    assert results[0] == results[1]


# Beyond the issue: from Keras's own accuracy tests.

def test_accuracy_weighs_examples_by_sample_weight_as_keras_does():
    y_true, y_pred, weights = np.array([[2], [1]]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]]), np.array([0.7, 0.3])
    ours, theirs = metrics.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy()
    ours.update_state(y_true, y_pred, sample_weight=weights)
    theirs.update_state(y_true, y_pred, sample_weight=weights)
    assert float(ours.result()) == pytest.approx(float(theirs.result())) == pytest.approx(0.3)

"""engine.metrics: streaming means against NumPy's weighted average and keras.metrics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import metrics

_rng = np.random.default_rng(0)

# Batches of a streamed epoch, the last one smaller, as the training loop feeds them.
VALUE_BATCHES = [_rng.normal(size=n).astype(np.float32) for n in (8, 8, 3)]
WEIGHT_BATCHES = [_rng.uniform(0.0, 2.0, size=n).astype(np.float32) for n in (8, 8, 3)]
LOGIT_BATCHES = [_rng.normal(size=(n, 5)).astype(np.float32) for n in (8, 8, 3)]  # [batch, classes]
LABEL_BATCHES = [_rng.integers(0, 5, size=n) for n in (8, 8, 3)]  # [batch]

# name -> list of (values, sample_weight) updates
MEAN_UPDATES = {
    "unweighted": [(v, None) for v in VALUE_BATCHES],
    "per-element-weights": list(zip(VALUE_BATCHES, WEIGHT_BATCHES)),
    "scalar-weight-per-batch": [(v, np.float32(len(v))) for v in VALUE_BATCHES],
    "batch-mean-weighted-by-batch-size": [(np.float32(v.mean()), np.float32(len(v))) for v in VALUE_BATCHES],
    "zero-weights-ignored": [(VALUE_BATCHES[0], np.where(np.arange(8) < 4, 1.0, 0.0).astype(np.float32))],
}


def numpy_weighted_mean(updates) -> float:
    """`sum w x / sum w` over every sample seen; a weight of lower rank weighs the mean of its sample."""
    total = count = 0.0
    for values, weights in updates:
        values = np.asarray(values, np.float64)
        if weights is None:
            weights = np.ones_like(values)
        weights = np.asarray(weights, np.float64)
        values = values.mean(axis=tuple(range(weights.ndim, values.ndim))) if values.ndim > weights.ndim else values
        total += np.sum(values * weights)
        count += np.sum(weights)
    return total / count


@pytest.mark.parametrize("name", MEAN_UPDATES)
def test_mean_is_the_weighted_average_of_everything_seen(name):
    mean = metrics.Mean()
    for values, weights in MEAN_UPDATES[name]:
        mean.update_state(values, sample_weight=weights)
    np.testing.assert_allclose(mean.result().numpy(), numpy_weighted_mean(MEAN_UPDATES[name]), rtol=1e-6)


@pytest.mark.parametrize("name", MEAN_UPDATES)
def test_mean_matches_keras_mean(name):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for values, weights in MEAN_UPDATES[name]:
        ours.update_state(values, sample_weight=weights)
        theirs.update_state(values, sample_weight=weights)
    np.testing.assert_allclose(ours.result().numpy(), theirs.result().numpy(), rtol=1e-6)


ALL_VALUES_MEAN = np.concatenate(VALUE_BATCHES).astype(np.float64).mean()


def test_batch_means_weighted_by_batch_size_give_the_mean_over_examples():
    """Why the training loop passes weight = batch size: a smaller last batch counts less."""
    mean = metrics.Mean()
    for values in VALUE_BATCHES:
        mean.update_state(values.mean(), sample_weight=len(values))
    np.testing.assert_allclose(mean.result().numpy(), ALL_VALUES_MEAN, rtol=1e-6)


# Weights of lower rank than the values: Keras averages the values down to the weights'
# rank first, so a weight counts a whole update (scalar weight) or a whole row ([batch]).
WEIGHTED_UPDATES = {
    "scalar-weight-on-a-vector": [(np.array([1.0, 2.0, 6.0], np.float32), np.float32(2.0)),
                                  (np.array([10.0], np.float32), np.float32(1.0))],
    "row-weights-on-a-square-matrix": [(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
                                        np.array([1.0, 3.0], np.float32))],
    "row-weights-on-a-wide-matrix": [(np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 8.0]], np.float32),
                                      np.array([2.0, 1.0], np.float32))],
}
EXPECTED_WEIGHTED_MEAN = {  # by hand: sum_k w_k * mean(x_k) / sum_k w_k
    "scalar-weight-on-a-vector": (2 * 3.0 + 1 * 10.0) / (2 + 1),
    "row-weights-on-a-square-matrix": (1 * 1.5 + 3 * 3.5) / (1 + 3),
    "row-weights-on-a-wide-matrix": (2 * 2.0 + 1 * 5.0) / (2 + 1),
}


@pytest.mark.parametrize("name", WEIGHTED_UPDATES)
def test_lower_rank_weights_weigh_whole_samples_as_keras_does(name):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for values, weights in WEIGHTED_UPDATES[name]:
        ours.update_state(values, sample_weight=weights)
        theirs.update_state(values, sample_weight=weights)
    np.testing.assert_allclose(ours.result().numpy(), EXPECTED_WEIGHTED_MEAN[name], rtol=1e-6)
    np.testing.assert_allclose(ours.result().numpy(), theirs.result().numpy(), rtol=1e-6)


@pytest.mark.parametrize("metric_class", [metrics.Mean, metrics.SparseCategoricalAccuracy])
def test_result_before_any_update_is_zero_not_nan(metric_class):
    assert metric_class().result().numpy() == 0.0


def test_mean_with_only_zero_weights_is_zero_not_nan():
    mean = metrics.Mean()
    mean.update_state([1.0, 2.0], sample_weight=[0.0, 0.0])
    assert mean.result().numpy() == 0.0


def test_reset_state_forgets_everything_seen_before():
    mean = metrics.Mean()
    mean.update_state([100.0, 200.0])
    mean.reset_state()
    assert mean.result().numpy() == 0.0
    mean.update_state([1.0, 2.0])
    np.testing.assert_allclose(mean.result().numpy(), 1.5, rtol=1e-6)


def test_accuracy_reset_state_forgets_everything_seen_before():
    accuracy = metrics.SparseCategoricalAccuracy()
    accuracy.update_state([0, 0], [[0.0, 1.0], [0.0, 1.0]])  # both wrong
    accuracy.reset_state()
    accuracy.update_state([1, 1], [[0.0, 1.0], [0.0, 1.0]])  # both right
    assert accuracy.result().numpy() == 1.0


@pytest.mark.parametrize("metric_class", [metrics.Mean, metrics.SparseCategoricalAccuracy])
def test_state_is_not_trainable_so_an_optimizer_never_updates_it(metric_class):
    metric = metric_class()
    assert metric.trainable_variables == ()
    assert len(metric.variables) == 2


def numpy_accuracy(label_batches, prediction_batches) -> float:
    labels = np.concatenate(label_batches)
    predicted = np.concatenate([np.argmax(p, axis=-1) for p in prediction_batches])
    return float(np.mean(predicted == labels))


@pytest.mark.parametrize("on", ["logits", "probabilities"])
def test_accuracy_over_several_batches_matches_numpy_and_keras(on):
    """Softmax keeps the argmax, so logits and their probabilities score the same."""
    predictions = LOGIT_BATCHES if on == "logits" else [tf.nn.softmax(z).numpy() for z in LOGIT_BATCHES]
    ours, theirs = metrics.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy()
    for labels, y_pred in zip(LABEL_BATCHES, predictions):
        ours.update_state(labels, y_pred)
        theirs.update_state(labels, y_pred)
    expected = numpy_accuracy(LABEL_BATCHES, LOGIT_BATCHES)
    assert 0.0 < expected < 1.0  # a score that a wrong comparison could not hit by chance
    np.testing.assert_allclose(ours.result().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(ours.result().numpy(), theirs.result().numpy(), rtol=1e-6)


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.float32], ids=["int32", "int64", "float32"])
def test_accuracy_accepts_integer_like_labels_of_any_dtype(label_dtype):
    accuracy = metrics.SparseCategoricalAccuracy()
    accuracy.update_state(LABEL_BATCHES[0].astype(label_dtype), LOGIT_BATCHES[0])
    expected = numpy_accuracy(LABEL_BATCHES[:1], LOGIT_BATCHES[:1])
    np.testing.assert_allclose(accuracy.result().numpy(), expected, rtol=1e-6)


def test_accuracy_breaks_ties_towards_the_first_class_like_numpy_and_keras():
    labels, y_pred = [0, 1], [[0.5, 0.5], [0.5, 0.5]]
    ours, theirs = metrics.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy()
    ours.update_state(labels, y_pred)
    theirs.update_state(np.array(labels), np.array(y_pred))
    assert ours.result().numpy() == 0.5 == theirs.result().numpy()


def test_updates_inside_tf_function_accumulate_like_eager_ones():
    """One trace with a None batch axis serves every batch size, state living in variables."""
    eager_loss, eager_accuracy = metrics.Mean(), metrics.SparseCategoricalAccuracy()
    graph_loss, graph_accuracy = metrics.Mean(), metrics.SparseCategoricalAccuracy()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None, 5], tf.float32),
        ]
    )
    def update(values, labels, logits):
        graph_loss.update_state(tf.reduce_mean(values), sample_weight=tf.cast(tf.size(values), tf.float32))
        graph_accuracy.update_state(labels, logits)

    for values, labels, logits in zip(VALUE_BATCHES, LABEL_BATCHES, LOGIT_BATCHES):
        update(values, labels, logits)
        eager_loss.update_state(values.mean(), sample_weight=len(values))
        eager_accuracy.update_state(labels, logits)

    assert update.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(graph_loss.result().numpy(), eager_loss.result().numpy(), rtol=1e-6)
    np.testing.assert_allclose(graph_loss.result().numpy(), ALL_VALUES_MEAN, rtol=1e-6)
    assert graph_accuracy.result().numpy() == eager_accuracy.result().numpy()
    np.testing.assert_allclose(graph_accuracy.result().numpy(), numpy_accuracy(LABEL_BATCHES, LOGIT_BATCHES), rtol=1e-6)


def test_reset_inside_tf_function_takes_effect():
    mean = metrics.Mean()
    mean.update_state([5.0])

    @tf.function
    def reset_then_update(values):
        mean.reset_state()
        mean.update_state(values)
        return mean.result()

    np.testing.assert_allclose(reset_then_update(tf.constant([1.0, 2.0])).numpy(), 1.5, rtol=1e-6)

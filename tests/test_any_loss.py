"""A Trainer for any loss the engine ships: metrics are a parameter, and the labels are checked by the loss
they feed. A one-hot classifier and a small regression train to a stated loss in every mode."""

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, metrics, optimizers
from engine.errors import DataError
from engine.training import Trainer
from layers import Dense, Flatten, Sequential, mlp

MODES = [("eager", 1), ("graph", 1), ("xla", 8)]


@pytest.fixture(scope="module")
def digits(mnist_t10k_dir):
    from engine.data import idx

    images = idx.read_idx(mnist_t10k_dir / "t10k-images-idx3-ubyte.gz")[:1024].astype(np.float32) / 255.0
    labels = idx.read_idx(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz")[:1024].astype(np.int64)
    return images, labels


@pytest.mark.parametrize("mode, steps_per_execution", MODES)
def test_a_one_hot_classifier_trains_on_categorical_crossentropy_with_categorical_accuracy(digits, mode,
                                                                                              steps_per_execution):
    images, labels = digits
    one_hot = np.eye(10, dtype=np.float32)[labels]
    tf.random.set_seed(0)
    trainer = Trainer(mlp((64,), 10), losses.categorical_crossentropy, optimizers.SGD(0.1), mode, steps_per_execution)
    history = trainer.fit(images[:768], one_hot[:768], epochs=5, batch_size=32)
    assert set(history[-1]) >= {"loss", "accuracy"}
    assert history[-1]["loss"] < 0.6 and history[-1]["accuracy"] > 0.85, history[-1]
    test = trainer.evaluate(images[768:], one_hot[768:])
    assert test["accuracy"] > 0.8, test


@pytest.mark.parametrize("mode, steps_per_execution", MODES)
def test_a_small_regression_trains_on_mean_squared_error_to_a_stated_loss(mode, steps_per_execution):
    """y = x W* + noise (3 targets from 8 features): from an initial MSE near 2.5 to below 0.05, the
    noise's variance being 0.01; mean absolute error as its metric."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 3)).astype(np.float32) * 0.5 + 0.1 * rng.normal(size=(512, 3))).astype(np.float32)
    tf.random.set_seed(0)
    model = Sequential([Dense(16, activation="relu"), Dense(3)])
    trainer = Trainer(model, losses.mean_squared_error, optimizers.SGD(0.05), mode, steps_per_execution,
                      metrics=["mean_absolute_error"])
    history = trainer.fit(x, y, epochs=20, batch_size=32)
    assert history[0]["loss"] > 0.3 and history[-1]["loss"] < 0.05, (history[0], history[-1])
    assert set(history[-1]) >= {"loss", "mean_absolute_error"} and "accuracy" not in history[-1]


def test_manual_gradients_train_a_regression_too():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(256, 4)).astype(np.float32), rng.normal(size=(256, 1)).astype(np.float32)
    results = []
    for way in ("tape", "manual"):
        tf.random.set_seed(1)
        trainer = Trainer(Sequential([Dense(8, activation="relu"), Dense(1)]), losses.mean_squared_error,
                          optimizers.SGD(0.05), "graph", gradients=way)
        results.append(trainer.fit(x, y[:, 0], epochs=2, batch_size=32)[-1]["loss"])  # targets [N] for outputs [N, 1]
    assert results[0] == pytest.approx(results[1], rel=1e-5)


@pytest.mark.parametrize("loss_fn, labels, message", [
    (losses.sparse_categorical_crossentropy, np.eye(3)[[0, 1, 2, 0]],
     r"sparse_categorical_crossentropy takes labels as class indices of shape \(N,\) or \(N, 1\), got shape \(4, 3\)"),
    (losses.sparse_categorical_crossentropy, np.array([0, 1, 3, 0]), r"label 3 at index 2 is out of range"),
    (losses.categorical_crossentropy, np.array([0, 1, 2, 0]),
     r"categorical_crossentropy takes one-hot rows of shape \(N, 3\) for a model with 3 outputs, got labels of shape \(4,\)"),
    (losses.categorical_crossentropy, np.array([[1, 0, 0], [0.5, 0.6, 0], [0, 0, 1], [1, 0, 0]]),
     r"label row 1 is \[0.5, 0.6, 0\] \(sum 1.1\): a one-hot \(or soft\) row must be non-negative and sum to 1"),
    (losses.mean_squared_error, np.zeros((4, 2)), r"mean_squared_error takes targets of the outputs' shape \(N, 3\), "
                                                   r"got targets of shape \(4, 2\)"),
    (losses.mean_squared_error, np.array([[np.nan] * 3] * 4), r"the labels must be finite numbers"),
], ids=["sparse-one-hot", "sparse-range", "categorical-indices", "categorical-not-a-distribution", "mse-shape",
        "mse-nan"])
def test_labels_are_refused_by_the_loss_they_feed_with_one_line(loss_fn, labels, message):
    trainer = Trainer(Sequential([Flatten(), Dense(3)]), loss_fn, optimizers.SGD(0.1), "eager")
    with pytest.raises(DataError, match=message):
        trainer.fit(np.zeros((4, 2, 2), np.float32), labels, epochs=1, batch_size=2)


def test_metrics_are_a_parameter_by_name_or_class():
    trainer = Trainer(mlp((4,), 3), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "eager",
                      metrics=["accuracy", metrics.MeanAbsoluteError])
    assert [m.name for m in trainer.train_metrics] == ["accuracy", "mean_absolute_error"]
    assert trainer.train_metrics[0] is not trainer.eval_metrics[0]  # training and evaluation keep their own
    assert Trainer(mlp((4,), 3), losses.mean_squared_error, optimizers.SGD(0.1)).train_metrics == []
    with pytest.raises(ValueError, match=r"metric 'accuracy' needs a classification loss"):
        Trainer(mlp((4,), 3), losses.mean_squared_error, optimizers.SGD(0.1), metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"Unknown metric 'precision'"):
        Trainer(mlp((4,), 3), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), metrics=["precision"])


def test_the_library_refuses_what_a_careless_caller_passes_naming_the_argument():
    trainer = Trainer(mlp((4,), 3), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "eager")
    images, labels = np.zeros((8, 2, 2), np.float32), np.zeros(8, np.int64)
    with pytest.raises(TypeError, match=r"batch_size must be a positive integer, got 2.5"):
        trainer.fit(images, labels, epochs=1, batch_size=2.5)
    with pytest.raises(TypeError, match=r"images must be an array .* got _TensorSliceDataset: for a tf.data.Dataset"):
        trainer.fit(tf.data.Dataset.from_tensor_slices(images), labels, epochs=1, batch_size=2)
    poisoned = images.copy()
    poisoned[5, 1, 0] = np.nan
    with pytest.raises(DataError, match=r"the images must be finite numbers.*first at index \[5, 1, 0\]"):
        trainer.fit(poisoned, labels, epochs=1, batch_size=2)
    assert Dense(np.int64(3)).units == 3 and isinstance(Dense(np.int64(3)).units, int)

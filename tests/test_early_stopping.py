"""Early stopping stops where Keras's rule says, restores the best weights; the validation split is Keras's."""

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers
from engine.callbacks import LambdaCallback
from engine.run.early_stopping import EarlyStopping
from engine.training import Trainer
from engine.data.validation import hold_out
from layers import mlp


def tiny_trainer(mode: str = "eager") -> Trainer:
    tf.random.set_seed(0)
    model = mlp((8,), 3)
    model.build((None, 4, 4))
    return Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), mode)


def run_constructed(monitor: str, values, patience: int, min_delta: float):
    """Feeds `values` as the monitored metric, epoch by epoch, with every weight set to the epoch number,
    until the stopper asks to stop; returns the stopper and the epoch whose weights the model holds."""
    trainer = tiny_trainer()
    stopper = EarlyStopping(trainer, monitor, patience, min_delta)
    for epoch, value in enumerate(values, 1):
        for variable in trainer.model.trainable_variables:
            variable.assign(tf.fill(variable.shape, float(epoch)))
        stopper.on_epoch_end(epoch, {"epoch": epoch, "loss": 0.5, monitor: value})
        if trainer.stop_training:
            stopper.on_train_end([])  # as fit does after the epoch a callback stopped at
            break
    held = {float(v.numpy().flat[0]) for v in trainer.model.trainable_variables}
    assert len(held) == 1, "every variable comes from one and the same epoch"
    return stopper, int(held.pop())


def test_val_loss_stops_after_patience_epochs_without_an_improvement_larger_than_min_delta():
    # 0.79 beats the best (0.80) by less than min_delta 0.02, so it is not an improvement.
    stopper, held = run_constructed("val_loss", [1.0, 0.80, 0.85, 0.79, 0.70, 0.60], patience=2, min_delta=0.02)
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.best) == (4, 2, 0.80)
    assert held == 2, "the best epoch's weights are restored on stopping"


def test_without_min_delta_the_same_small_gain_counts_and_training_goes_on():
    stopper, held = run_constructed("val_loss", [1.0, 0.80, 0.85, 0.79, 0.70, 0.60], patience=2, min_delta=0.0)
    assert stopper.stopped_epoch is None and not stopper.trainer.stop_training
    assert stopper.best_epoch == 6 and held == 6


def test_val_accuracy_is_maximised():
    stopper, held = run_constructed("val_accuracy", [0.5, 0.7, 0.6, 0.65, 0.69, 0.9], patience=3, min_delta=0.0)
    assert (stopper.stopped_epoch, stopper.best_epoch, held) == (5, 2, 2)


def test_restore_best_weights_after_the_last_epoch_when_it_did_not_stop():
    stopper, _ = run_constructed("val_loss", [0.5, 0.9], patience=5, min_delta=0.0)
    stopper.restore_best_weights()
    assert all(np.all(v.numpy() == 1.0) for v in stopper.trainer.model.trainable_variables)


@pytest.mark.parametrize("monitor, values, patience, min_delta", [
    ("val_loss", [1.0, 0.80, 0.85, 0.79, 0.70, 0.60], 2, 0.02),
    ("val_loss", [1.0, 0.80, 0.85, 0.79, 0.70, 0.60], 2, 0.0),
    ("val_accuracy", [0.5, 0.7, 0.6, 0.65, 0.69, 0.9], 3, 0.0),
    ("val_accuracy", [0.5, 0.5, 0.5, 0.5], 1, 0.0),
])
def test_stops_on_the_same_epoch_as_keras_early_stopping(monitor, values, patience, min_delta):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keras_stopper = keras.callbacks.EarlyStopping(monitor=monitor, min_delta=min_delta, patience=patience,
                                                  mode="min" if monitor == "val_loss" else "max",
                                                  restore_best_weights=True)
    keras_stopper.set_model(model)
    model.stop_training = False  # as model.fit sets it
    keras_stopper.on_train_begin()
    for epoch, value in enumerate(values):  # Keras counts epochs from 0
        keras_stopper.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    ours, _ = run_constructed(monitor, values, patience, min_delta)
    assert ours.stopped_epoch == (keras_stopper.stopped_epoch + 1 if model.stop_training else None)
    assert ours.best_epoch == keras_stopper.best_epoch + 1


@pytest.mark.parametrize("kwargs, message", [
    ({"monitor": "loss"}, "early stopping monitors one of val_loss, val_accuracy, got 'loss'"),
    ({"patience": 0}, "early stopping patience must be >= 1 epoch, got 0"),
    ({"min_delta": -0.1}, "early stopping min_delta must be >= 0, got -0.1"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(tiny_trainer(), **kwargs)


def test_monitoring_without_validation_data_says_so():
    with pytest.raises(ValueError, match="logs have only epoch, loss: pass validation data to fit"):
        EarlyStopping(tiny_trainer()).on_epoch_end(1, {"epoch": 1, "loss": 0.3})


def test_a_real_short_run_stops_on_time_and_ends_with_the_best_epochs_weights():
    """A min_delta no real gain can beat makes epoch 1 the best and the stop certain: at epoch 1 + patience."""
    rng = np.random.default_rng(0)
    images, labels = rng.random((96, 4, 4), dtype=np.float32), rng.integers(0, 3, 96).astype(np.int32)
    trainer = tiny_trainer("graph")
    snapshots = {}
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.setdefault(
        epoch, [v.numpy() for v in trainer.model.trainable_variables]))
    stopper = EarlyStopping(trainer, "val_loss", patience=2, min_delta=100.0)
    history = trainer.fit(images[:64], labels[:64], epochs=10, batch_size=16, validation_data=(images[64:], labels[64:]),
                          callbacks=[record, stopper])
    assert [logs["epoch"] for logs in history] == [1, 2, 3] and stopper.stopped_epoch == 3
    assert not np.allclose(snapshots[3][0], snapshots[1][0]), "training did move the weights"
    for variable, best in zip(trainer.model.trainable_variables, snapshots[1]):
        np.testing.assert_array_equal(variable.numpy(), best)
    assert trainer.evaluate(images[64:], labels[64:], 16)["loss"] == pytest.approx(history[0]["val_loss"], rel=1e-6)
    assert len(trainer.fit(images, labels, epochs=2, batch_size=16)) == 2, "a new fit starts with stop_training off"


def test_validation_split_holds_out_the_last_fraction_like_keras():
    images, labels = np.arange(10 * 2).reshape(10, 2), np.arange(10)
    (train_x, train_y), (val_x, val_y) = hold_out(images, labels, 0.25)  # ceil(10 * 0.75) = 8 stay
    np.testing.assert_array_equal(train_y, np.arange(8))
    np.testing.assert_array_equal(val_y, [8, 9])
    np.testing.assert_array_equal(val_x, images[8:])
    with pytest.raises(ValueError, match="validation_split must be in \\(0, 1\\), got 1.0"):
        hold_out(images, labels, 1.0)
    with pytest.raises(ValueError, match="leaves an empty training or validation set"):
        hold_out(images[:1], labels[:1], 0.5)

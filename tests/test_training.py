"""The training loop: batching, one step against tf.keras, the three execution modes, fit/evaluate."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers, training
from engine.batches import epoch_batches, execution_blocks
from engine.callbacks import LambdaCallback
from engine.errors import DataError
from engine.training import Trainer, train_step
from engine.metrics import Mean, SparseCategoricalAccuracy
from layers import mlp
from engine.compare.keras_twin import sequential_twin


def small_problem(n=100, seed=0):
    """A learnable toy problem: the label is which quadrant of the 4x4 'image' is brightest."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 4, 4)).astype(np.float32)
    y = x.reshape(n, 2, 2, 2, 2).sum(axis=(2, 4)).reshape(n, 4).argmax(-1).astype(np.int32)
    return x, y


def fresh_model(hidden=(16,), seed=3):
    tf.random.set_seed(seed)
    model = mlp(hidden, 4)
    model.build((None, 4, 4))
    return model


@pytest.mark.parametrize("n, batch_size", [(10, 3), (64, 32), (5, 8)])
def test_an_epoch_visits_every_example_once_and_keeps_the_last_partial_batch(n, batch_size):
    batches = list(epoch_batches(n, batch_size, seed=0, epoch=1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert [len(b) for b in batches] == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


def test_shuffling_is_fresh_every_epoch_and_reproducible_from_the_seed():
    first = np.concatenate(list(epoch_batches(100, 10, seed=0, epoch=1)))
    again = np.concatenate(list(epoch_batches(100, 10, seed=0, epoch=1)))
    second = np.concatenate(list(epoch_batches(100, 10, seed=0, epoch=2)))
    other_seed = np.concatenate(list(epoch_batches(100, 10, seed=1, epoch=1)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second) and not np.array_equal(first, other_seed)
    np.testing.assert_array_equal(np.concatenate(list(epoch_batches(7, 3, seed=None, epoch=1))), np.arange(7))


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_three_train_steps_equal_tf_keras_sgd_on_keras_gradients(momentum, nesterov):
    """Our tape + loss + SGD against Keras's model + loss + SGD, from identical weights."""
    x, y = small_problem(96)
    model = fresh_model()
    twin = sequential_twin(model)
    ours = optimizers.SGD(0.1, momentum, nesterov)
    theirs = keras.optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov)
    keras_loss = keras.losses.SparseCategoricalCrossentropy()
    for step in range(3):
        xb, yb = x[step * 32:(step + 1) * 32], y[step * 32:(step + 1) * 32]
        loss = train_step(model, losses.sparse_categorical_crossentropy, ours, Mean(), [SparseCategoricalAccuracy()], xb, yb)
        with tf.GradientTape() as tape:
            keras_value = keras_loss(yb, twin(xb))
        theirs.apply_gradients(zip(tape.gradient(keras_value, twin.trainable_variables), twin.trainable_variables))
        np.testing.assert_allclose(loss.numpy(), keras_value.numpy(), rtol=1e-6)
    for a, b in zip(model.trainable_variables, twin.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def train_briefly(mode, epochs=2):
    x, y = small_problem(100)
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1, 0.9), mode)
    history = trainer.fit(x, y, epochs=epochs, batch_size=32, validation_data=small_problem(40, seed=1))
    return trainer, history


def test_eager_graph_and_xla_compute_the_same_training_run():
    runs = {mode: train_briefly(mode) for mode in ("eager", "graph", "xla")}
    eager_trainer, eager_history = runs["eager"]
    for mode in ("graph", "xla"):
        trainer, history = runs[mode]
        for ours, reference in zip(history, eager_history):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                # XLA fuses and reorders float32 sums: agreement to rounding, not bit for bit.
                assert ours[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), (mode, key)
        for a, b in zip(trainer.model.trainable_variables, eager_trainer.model.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_fit_learns_and_reports_every_epoch():
    seen = []
    x, y = small_problem(400)
    trainer = Trainer(fresh_model((32,)), losses.sparse_categorical_crossentropy, optimizers.SGD(0.05, 0.9), "graph")
    history = trainer.fit(x, y, epochs=10, batch_size=32, validation_data=small_problem(200, seed=1),
                          callbacks=[LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs))])
    assert seen == history and [logs["epoch"] for logs in history] == list(range(1, 11))
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "steps_per_second"}
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    assert history[-1]["val_accuracy"] > 0.8, "a model that learns separates four quadrants"


def test_epoch_loss_is_the_mean_over_examples_with_a_partial_last_batch():
    """Batches of 3, 3 and 1: the epoch loss weights each batch by its size, as Keras does.

    A learning rate of 1e-12 leaves the weights unchanged, so each batch's loss can be
    recomputed afterwards from the same weights.
    """
    x, y = small_problem(7)
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(1e-12), "eager")
    history = trainer.fit(x, y, epochs=1, batch_size=3, seed=None)
    model = trainer.model
    batch_losses = [float(losses.output_loss(losses.sparse_categorical_crossentropy, y[i], model.logits(x[i]),
                                             model.output_activation)) for i in epoch_batches(7, 3, None, 1)]
    assert history[0]["loss"] == pytest.approx(np.average(batch_losses, weights=[3, 3, 1]), rel=1e-6)
    assert history[0]["loss"] != pytest.approx(np.mean(batch_losses), rel=1e-6), "weights must matter here"


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((5, 4, 4), np.float32), np.zeros(4, np.int32), "got 5 images but 4 labels"),
    (np.zeros((0, 4, 4), np.float32), np.zeros(0, np.int32), "the data set is empty"),
])
def test_fit_refuses_unpaired_or_empty_data_with_one_clear_message(images, labels, message):
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "graph")
    with pytest.raises(ValueError, match=message):
        trainer.fit(images, labels, epochs=1, batch_size=2)


def test_evaluate_matches_a_direct_computation():
    x, y = small_problem(50)
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "graph")
    result = trainer.evaluate(x, y, batch_size=50)
    probabilities = trainer.model(x).numpy()
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(-1) == y))
    assert result["loss"] == pytest.approx(-np.mean(np.log(probabilities[np.arange(50), y])), rel=1e-5)


def test_execution_blocks_group_k_full_batches_and_keep_the_partial_batch_alone():
    blocks = list(execution_blocks(epoch_batches(23, 4, seed=None, epoch=1), steps_per_execution=2))
    assert [block.shape for block in blocks] == [(2, 4), (2, 4), (1, 4), (1, 3)]
    np.testing.assert_array_equal(np.concatenate([block.ravel() for block in blocks]), np.arange(23))


def test_train_pys_default_steps_per_call_hold_a_bounded_amount_of_work():
    from engine import execution

    reference = execution.dense_train_flops(32, (784, 256, 128, 10))
    assert reference == 32 * 1_007_104  # 32.2 MFLOP: 2 B (2 * 234,752 + 34,048)
    assert execution.steps_per_execution_for(reference) == 2048  # the cap: the whole 1,875-step epoch
    big = execution.dense_train_flops(32, (784, 2048, 2048, 10))  # 1.0 GFLOP a step
    assert execution.steps_per_execution_for(big) == int(execution.FLOPS_PER_CALL // big) == 98
    assert execution.steps_per_execution_for(10 * execution.FLOPS_PER_CALL) == 1  # a step above the budget runs alone


def test_a_call_never_spans_two_epochs_so_the_reference_epoch_is_one_call():
    from engine.batches import epoch_blocks

    # Batch 32 over Fashion-MNIST's 60,000: the epoch's 1,875 steps in one [1875, 32] block, every epoch.
    assert [block.shape for block in epoch_blocks(60000, 32, 0, 2, 2048)] == [(1875, 32)]
    # 54,000 (a validation split of 0.1): the full batches in one block, the partial one alone.
    assert [block.shape for block in epoch_blocks(54000, 32, 0, 1, 2048)] == [(1687, 32), (1, 16)]
    # Batch 1: the epoch is cut into calls of at most K steps, so signals and guards act between them.
    assert [len(block) for block in epoch_blocks(5000, 1, 0, 1, 2048)] == [2048, 2048, 904]


@pytest.mark.parametrize("steps_per_execution", [1, 5])
@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_a_full_run_traces_each_step_once(mode, steps_per_execution, monkeypatch):
    """Two epochs of 100 examples in batches of 8 (12 full batches and one of 4; with 5 steps per
    call, blocks of 5, 5, 2 and 1 steps), a validation set and a test set of other sizes: the
    Python of the training step and of the test step each runs once, so one trace serves all."""
    traces = collections.Counter()

    def counted(name, step):
        def step_that_counts(*args, **kwargs):
            traces[name] += 1
            return step(*args, **kwargs)
        return step_that_counts

    monkeypatch.setattr(training, "train_step", counted("train", training.train_step))
    monkeypatch.setattr(training, "test_step", counted("test", training.test_step))
    x, y = small_problem(100)
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), mode,
                      steps_per_execution)
    trainer.fit(x, y, epochs=2, batch_size=8, validation_data=small_problem(30, seed=1))
    trainer.evaluate(*small_problem(17, seed=2), batch_size=8)
    assert traces == {"train": 1, "test": 1}


@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_steps_per_execution_changes_speed_not_results(mode):
    x, y = small_problem(100)
    runs = []
    for k in (1, 4):
        trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1, 0.9), mode, k)
        step_losses = []
        record = LambdaCallback(on_block_end=lambda epoch, step, losses: step_losses.extend(losses.numpy()))
        trainer.fit(x, y, epochs=2, batch_size=8, callbacks=[record])
        runs.append((step_losses, [v.numpy() for v in trainer.model.trainable_variables]))
    (losses_1, weights_1), (losses_4, weights_4) = runs
    assert len(losses_4) == len(losses_1) == 26
    np.testing.assert_allclose(losses_4, losses_1, rtol=1e-5)
    for a, b in zip(weights_1, weights_4):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_fit_and_evaluate_take_labels_as_a_column_as_keras_does(mode):
    x, y = small_problem(64)
    runs = []
    for labels in (y, y[:, None]):  # (n,) and (n, 1)
        trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), mode)
        history = trainer.fit(x, labels, epochs=1, batch_size=16, seed=0)
        runs.append((history[0]["loss"], history[0]["accuracy"], trainer.evaluate(x, labels, batch_size=16)))
    assert runs[0] == runs[1]
    with pytest.raises(DataError, match=r"takes labels as class indices of shape \(N,\) or \(N, 1\), got shape \(64, 2\)"):
        Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), mode).fit(
            x, np.stack([y, y], axis=1), epochs=1, batch_size=16)

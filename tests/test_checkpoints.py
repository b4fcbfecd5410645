"""Checkpoints, resuming, signals and faults at the library level: Trainer.fit with its guard."""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers
from engine.run import faults
from engine.run.checkpoints import Checkpointer, Position
from engine.errors import ConfigError, DataError
from engine.run.interrupts import Interrupted, SignalStop
from engine.run.early_stopping import EarlyStopping
from engine.run.safeguards import Safeguards
from engine.batches import execution_blocks
from engine.callbacks import LambdaCallback
from engine.training import Trainer
from tests.test_training import fresh_model, small_problem

TIMING = ("seconds", "steps_per_second")


def numbers(history):
    """A history without its timings, which no two runs share."""
    return [{key: value for key, value in logs.items() if key not in TIMING} for logs in history]


def trainer_and_checkpointer(directory, mode, seed=3):
    optimizer = optimizers.SGD(0.05, momentum=0.9)  # momentum: the velocity slots must resume too
    trainer = Trainer(fresh_model(seed=seed), losses.sparse_categorical_crossentropy, optimizer, mode,
                      steps_per_execution=4)
    optimizer.build(trainer.model.trainable_variables)
    return trainer, Checkpointer(str(directory), trainer, {"hidden": [16]})


def fit(trainer, checkpointer, start=Position(), stop=None, before=()):
    """Two epochs under Safeguards; returns the whole run's history (the restored epochs too)."""
    x, y = small_problem(100)  # 13 steps of 8 per epoch, the last one partial
    guard = Safeguards(checkpointer, list(trainer.model.trainable_variables), start, checkpoint_every=5, stop=stop)
    trainer.fit(x, y, epochs=2, batch_size=8, validation_data=small_problem(40, seed=1),
                callbacks=[*before, guard], **guard.fit_arguments())
    return guard.history


def test_compiled_blocks_end_exactly_on_checkpoint_steps():
    batches = [np.array([i]) for i in range(12)]  # global steps 4..15, after 3 done
    blocks = list(execution_blocks(iter(batches), 4, cut_every=5, steps_done=3))
    assert [len(block) for block in blocks] == [2, 4, 1, 4, 1]  # ends on steps 5, 9 (K), 10, 14 (K), 15


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_sigterm_mid_epoch_checkpoints_and_resuming_gives_the_uninterrupted_run_bitwise(tmp_path, mode):
    tf.config.experimental.enable_op_determinism()
    reference, reference_checkpointer = trainer_and_checkpointer(tmp_path / "reference", mode)
    reference_history = fit(reference, reference_checkpointer)

    def terminate_in_step_17(epoch, step, losses):  # epoch 2, step 4: mid-epoch, inside the block of steps 16-19
        if (epoch - 1) * 13 + step - len(losses) < 17 <= (epoch - 1) * 13 + step:
            os.kill(os.getpid(), signal.SIGTERM)

    stopped, checkpointer = trainer_and_checkpointer(tmp_path / "run", mode)
    with SignalStop() as stop, pytest.raises(Interrupted) as interrupted:
        fit(stopped, checkpointer, stop=stop, before=[LambdaCallback(on_block_end=terminate_in_step_17)])
    assert interrupted.value.exit_status == 143
    # The block finishes (step 19 = epoch 2, step 6, not a multiple of 5): the stop writes the checkpoint.
    assert "stopped by SIGTERM at epoch 2, step 6; checkpoint written to" in str(interrupted.value)

    resumed, checkpointer = trainer_and_checkpointer(tmp_path / "run", mode, seed=99)  # other initial weights
    start = checkpointer.restore()
    assert (start.epoch, start.step, len(start.history)) == (2, 6, 1)
    history = fit(resumed, checkpointer, start)
    assert numbers(history) == numbers(reference_history)
    for variable, expected in zip([*resumed.model.trainable_variables, *resumed.optimizer.velocities],
                                  [*reference.model.trainable_variables, *reference.optimizer.velocities]):
        np.testing.assert_array_equal(variable.numpy(), expected.numpy())
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations) == 26


def test_a_checkpoint_of_another_run_is_refused_by_name(tmp_path):
    trainer, checkpointer = trainer_and_checkpointer(tmp_path, "eager")
    checkpointer.save(Position(1, 3, []))
    other = Checkpointer(str(tmp_path), trainer, {"hidden": [32]})
    with pytest.raises(ConfigError, match=r"ckpt-1 is a checkpoint of a different run \(hidden \[16\] there, "
                                          r"\[32\] now\): pass the same flags to resume it, --noresume"):
        other.restore()


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path):
    trainer, checkpointer = trainer_and_checkpointer(tmp_path, "eager")
    path = checkpointer.save(Position(1, 3, []))
    data = next(tmp_path.glob("ckpt-1.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ConfigError, match=f"{path} (is not a readable scratchflow checkpoint|cannot be restored)"):
        checkpointer.restore()


def test_a_nan_loss_is_named_with_its_epoch_and_step():
    with pytest.raises(faults.NumericalFault, match=r"^the loss is nan at epoch 2, step 7: training diverged$"):
        faults.check_losses(np.array([1.0, 2.0, np.nan, np.inf], np.float32), epoch=2, last_step=8)
    faults.check_losses(np.array([1.0, 3e38], np.float32), epoch=1, last_step=2)


def test_a_weight_gone_to_inf_is_named_before_it_is_saved():
    good, bad = tf.Variable([1.0], name="good"), tf.Variable([1.0, np.inf], name="dense_1/kernel")
    with pytest.raises(faults.NumericalFault, match=r"variable dense_1/kernel:0 holds Inf after epoch 3, step 0"):
        faults.check_variables([good, bad], epoch=3, step=0)


@pytest.mark.parametrize("images, labels, error, message", [
    (np.zeros((4, 4, 4), np.float32), np.array([0, 1, 4, 2]), DataError,
     r"label 4 at index 2 is out of range: the model has 4 outputs, so labels must be in \[0, 4\)"),
    (np.zeros((4, 4, 4), np.float32), np.array([0, -1, 2, 2]), DataError, "label -1 at index 1 is out of range"),
    (np.zeros((4, 4, 4), np.float32), np.array([0.0, 1.0, 2.0, 3.0]), DataError,
     "labels must be integer class indices, got dtype float64"),
    (np.zeros((4, 5, 5), np.float32), np.zeros(4, np.int32), ValueError,
     r"expected inputs of shape \(None, 4, 4\), got shape \(1, 5, 5\)"),
    (np.zeros((4, 16), np.float32), np.zeros(4, np.int32), ValueError,
     r"expected inputs of shape \(None, 4, 4\), got shape \(1, 16\)"),
])
def test_bad_training_data_is_refused_before_any_step(images, labels, error, message):
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "graph")
    with pytest.raises(error, match=message):
        trainer.fit(images, labels, epochs=1, batch_size=2)
    assert int(trainer.optimizer.iterations) == 0


def test_early_stopping_resumed_mid_way_stops_where_the_uninterrupted_run_stops(tmp_path):
    """Its best value, best epoch, wait count and best weights are in the checkpoint.

    A min_delta no real gain can beat makes epoch 1 the best and the stop certain: after epoch 3
    (patience 2). The run is stopped in epoch 3; a resumed stopper that forgot epochs 1 and 2 would
    take epoch 3 as its best and stop two epochs later, holding other weights.
    """
    tf.config.experimental.enable_op_determinism()
    x, y = small_problem(100)  # 13 steps of 8 per epoch

    def run(directory, start_from_checkpoint=False, stop=None, before=()):
        trainer, _ = trainer_and_checkpointer(directory, "graph", seed=99 if start_from_checkpoint else 3)
        stopper = EarlyStopping(trainer, "val_loss", patience=2, min_delta=100.0)
        checkpointer = Checkpointer(str(directory), trainer, {"hidden": [16]}, states={"early_stopping": stopper})
        start = checkpointer.restore() if start_from_checkpoint else Position()
        guard = Safeguards(checkpointer, list(trainer.model.trainable_variables), start, checkpoint_every=5, stop=stop)
        trainer.fit(x, y, epochs=10, batch_size=8, validation_data=small_problem(40, seed=1),
                    callbacks=[*before, stopper, guard], **guard.fit_arguments())
        return trainer, stopper, guard.history

    reference, reference_stopper, reference_history = run(tmp_path / "reference")
    assert (reference_stopper.stopped_epoch, reference_stopper.best_epoch) == (3, 1)

    def terminate_in_epoch_3(epoch, step, losses):
        if epoch == 3 and step >= 4:
            os.kill(os.getpid(), signal.SIGTERM)

    with SignalStop() as stop, pytest.raises(Interrupted):
        run(tmp_path / "run", stop=stop, before=[LambdaCallback(on_block_end=terminate_in_epoch_3)])
    resumed, resumed_stopper, resumed_history = run(tmp_path / "run", start_from_checkpoint=True)
    assert (resumed_stopper.stopped_epoch, resumed_stopper.best_epoch, resumed_stopper.best) == \
        (reference_stopper.stopped_epoch, reference_stopper.best_epoch, reference_stopper.best)
    assert numbers(resumed_history) == numbers(reference_history)
    for variable, expected in zip(resumed.model.trainable_variables, reference.model.trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), expected.numpy())

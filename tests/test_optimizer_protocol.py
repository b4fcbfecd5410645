"""What the rest of the engine relies on from an optimizer, for every optimizer: the registry,
`Trainer(model, loss, "adam")`, slots in checkpoints, exact resume, and a refusal of another
optimizer's checkpoint. And that a fifth optimizer is one class and one line."""

import os
import re
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers
from engine.errors import ConfigError
from engine.callbacks import LambdaCallback
from engine.optimizers.optimizer import Optimizer
from engine.run.checkpoints import Checkpointer, Position
from engine.run.interrupts import Interrupted, SignalStop
from engine.run.safeguards import Safeguards
from engine.training import Trainer
from tests.test_checkpoints import numbers
from tests.test_training import fresh_model, small_problem

SETTINGS = {  # each with its slots in use, so that a resume has something to get wrong
    "sgd": dict(learning_rate=0.05, momentum=0.9),
    "adam": dict(learning_rate=0.01, amsgrad=True),
    "adamw": dict(learning_rate=0.01),
    "rmsprop": dict(learning_rate=0.01, momentum=0.5, centered=True),
}


def test_the_registry_names_the_four_optimizers_and_their_keras_arguments():
    assert {name: kind.__name__ for name, kind in optimizers.OPTIMIZERS.items()} == {
        "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
    assert optimizers.arguments_of("rmsprop") == ("learning_rate", "rho", "momentum", "epsilon", "centered",
                                                 "weight_decay", "name")
    assert isinstance(optimizers.get("Adam", beta_1=0.8), optimizers.Adam)
    adam = optimizers.Adam()
    assert optimizers.get(adam) is adam


@pytest.mark.parametrize("call, message", [
    (lambda: optimizers.get("adagrad"), "unknown optimizer 'adagrad': expected one of sgd, adam, adamw, rmsprop"),
    (lambda: optimizers.get("adam", rho=0.9), "Adam takes no argument rho: its arguments are learning_rate, beta_1"),
])
def test_an_unknown_name_or_argument_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("name", SETTINGS)
def test_a_trainer_takes_an_optimizer_by_name_with_keras_defaults(name):
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, name, "graph")
    assert type(trainer.optimizer) is optimizers.OPTIMIZERS[name]
    assert trainer.optimizer.get_config() == optimizers.get(name).get_config()
    x, y = small_problem(64)
    history = trainer.fit(x, y, epochs=3, batch_size=8, seed=0)
    assert int(trainer.optimizer.iterations) == 24
    assert history[-1]["loss"] < history[0]["loss"]


def run(directory, name, mode, seed=3, stop=None, start=Position(), before=()):
    """Two epochs of the toy problem with `name`'s optimizer, checkpointed every 5 steps; returns
    the trainer and the whole run's history."""
    trainer = Trainer(fresh_model(seed=seed), losses.sparse_categorical_crossentropy,
                      optimizers.get(name, **SETTINGS[name]), mode, steps_per_execution=4)
    trainer.build((None, 4, 4))
    checkpointer = Checkpointer(str(directory), trainer, {"hidden": [16]})
    if start is None:
        start = checkpointer.restore()
    x, y = small_problem(100)  # 13 steps of 8 per epoch
    guard = Safeguards(checkpointer, list(trainer.model.trainable_variables), start, checkpoint_every=5, stop=stop)
    trainer.fit(x, y, epochs=2, batch_size=8, callbacks=[*before, guard], **guard.fit_arguments())
    return trainer, guard.history


def state(trainer):
    """The model's weights and every slot of the optimizer, with its step counter and rate."""
    optimizer = trainer.optimizer
    return ([v.numpy() for v in trainer.model.trainable_variables]
            + [slot.numpy() for kind in optimizer.slot_names for slot in getattr(optimizer, kind)]
            + [optimizer.iterations.numpy(), optimizer.learning_rate.numpy()])


def resumed_equals_unstopped(tmp_path, name, mode):
    tf.config.experimental.enable_op_determinism()
    reference, reference_history = run(tmp_path / "reference", name, mode)

    def terminate_in_step_17(epoch, step, block_losses):  # epoch 2, mid-epoch
        if (epoch - 1) * 13 + step - len(block_losses) < 17 <= (epoch - 1) * 13 + step:
            os.kill(os.getpid(), signal.SIGTERM)

    with SignalStop() as stop, pytest.raises(Interrupted):
        run(tmp_path / "run", name, mode, stop=stop, before=[LambdaCallback(on_block_end=terminate_in_step_17)])
    resumed, history = run(tmp_path / "run", name, mode, seed=99, start=None)  # other initial weights, restored
    assert numbers(history) == numbers(reference_history)
    expected = state(reference)
    assert len(state(resumed)) == len(expected) > 2 + 4  # 4 weights, slots, iterations, learning rate
    for got, want in zip(state(resumed), expected):
        np.testing.assert_array_equal(got, want)
    assert int(resumed.optimizer.iterations) == 26


@pytest.mark.parametrize("name", ["adam"])
def test_a_run_stopped_and_resumed_equals_the_unstopped_one_bit_for_bit(tmp_path, name):
    resumed_equals_unstopped(tmp_path, name, "graph")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("name", SETTINGS)
def test_every_optimizer_resumes_bit_for_bit_in_every_mode(tmp_path, name, mode):
    resumed_equals_unstopped(tmp_path, name, mode)


@pytest.mark.parametrize("written, restored, there, now", [
    ("sgd", "adam", "SGD(momentum=0.9, nesterov=False, weight_decay=None)",
     "Adam(beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=True, weight_decay=None)"),
    ("adam", "adamw", "Adam(beta_1", "AdamW(weight_decay=0.004"),
    ("rmsprop", "sgd", "RMSprop(rho=0.9, momentum=0.5", "SGD(momentum=0.9"),
])
def test_a_checkpoint_of_another_optimizer_is_refused_in_one_line(tmp_path, written, restored, there, now):
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.get(written, **SETTINGS[written]))
    trainer.build((None, 4, 4))
    Checkpointer(str(tmp_path), trainer, {"hidden": [16]}).save(Position(1, 3, []))
    other = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.get(restored, **SETTINGS[restored]))
    other.build((None, 4, 4))
    with pytest.raises(ConfigError) as refused:
        Checkpointer(str(tmp_path), other, {"hidden": [16]}).restore()
    message = str(refused.value)
    assert "\n" not in message
    assert re.match(r".*ckpt-1 is a checkpoint of a different run \(optimizer '" + re.escape(there) + r".*' there, '"
                    + re.escape(now) + r".*' now\): pass the same flags to resume it, --noresume", message), message


def test_other_settings_of_the_same_optimizer_are_refused_but_a_new_learning_rate_is_not(tmp_path):
    def trainer(**arguments):
        made = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, optimizers.Adam(**arguments))
        made.build((None, 4, 4))
        return made

    Checkpointer(str(tmp_path), trainer(beta_1=0.9), {}).save(Position(1, 3, []))
    with pytest.raises(ConfigError, match=r"optimizer 'Adam\(beta_1=0.9, .*' there, 'Adam\(beta_1=0.8, .*' now"):
        Checkpointer(str(tmp_path), trainer(beta_1=0.8), {}).restore()
    assert Checkpointer(str(tmp_path), trainer(learning_rate=0.5), {}).restore() == Position(1, 3, [])


class Adagrad(Optimizer):
    """A fifth optimizer, as a learner would add it: Keras 3's Adagrad, slots and rule only.

    a <- a + g^2;  w <- w - lr g / sqrt(a + epsilon)
    """

    slot_names = ("accumulators",)

    def __init__(self, learning_rate=0.001, epsilon=1e-7, weight_decay=None, name=None):
        super().__init__(learning_rate, weight_decay, name)
        self.epsilon = epsilon

    def update_rule(self, g, w, slots, lr, t):
        a = slots["accumulators"] + tf.square(g)
        return lr * g / tf.sqrt(a + self.epsilon), {"accumulators": a}


def test_a_fifth_optimizer_is_one_class_and_one_line_and_works_everywhere(tmp_path, monkeypatch):
    """Registered by name, it trains through `Trainer`, checkpoints its slots, and matches Keras's
    Adagrad (started, as this one, from a zero accumulator)."""
    monkeypatch.setitem(optimizers.OPTIMIZERS, "adagrad", Adagrad)  # the one line
    trainer = Trainer(fresh_model(), losses.sparse_categorical_crossentropy, "adagrad", "graph")
    x, y = small_problem(64)
    trainer.fit(x, y, epochs=1, batch_size=8, seed=0)
    assert len(trainer.optimizer.accumulators) == 4
    Checkpointer(str(tmp_path), trainer, {}).save(Position(2, 0, []))
    restored = Trainer(fresh_model(seed=7), losses.sparse_categorical_crossentropy, "adagrad")
    restored.build((None, 4, 4))
    Checkpointer(str(tmp_path), restored, {}).restore()
    for got, want in zip(state(restored), state(trainer)):
        np.testing.assert_array_equal(got, want)

    ours = optimizers.get("adagrad", learning_rate=0.1)
    theirs = keras.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0)
    w_ours, w_theirs = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    for g in ([0.5, 1.0], [-1.0, 2.0], [0.25, -0.5]):
        ours.apply_gradients([(tf.constant(g), w_ours)])
        theirs.apply_gradients([(tf.constant(g), w_theirs)])
    np.testing.assert_allclose(w_ours.numpy(), w_theirs.numpy(), rtol=1e-6)


def test_a_checkpoint_from_before_the_optimizer_base_reads_as_the_sgd_it_was():
    """Before the base class, a job's identity held `momentum` and `nesterov`, and no optimizer (nor a
    precision: float32): such a run resumes (checked by hand too: a run of commit ea625f8 resumed by
    this version)."""
    from engine.run import checkpoints

    old = {"batch_size": 32, "momentum": 0.9, "nesterov": False, "seed": 0}
    assert checkpoints._upgraded(old) == {"batch_size": 32, "seed": 0, "precision": "float32",
                                          "optimizer": checkpoints.optimizer_identity(optimizers.SGD(0.01, momentum=0.9))}
    new = {"batch_size": 32, "optimizer": "Adam(beta_1=0.9)", "precision": "mixed_bfloat16"}
    assert checkpoints._upgraded(new) == new

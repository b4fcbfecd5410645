"""engine.tracing: the engine's own step is traced as written; anything a user wrote keeps AutoGraph.

AutoGraph's rewrite of every function a step calls costs seconds of a run's first epoch; the
engine's code does not need it, a user's may (a Python `if` on a tensor). These pin both halves:
the finder sees user code wherever the step can reach it, a step with user code still trains with
its Python control flow in every compiled mode, and the engine's step traced as written runs no
AutoGraph rewrite of the engine's functions and computes the same losses, bit for bit.
"""

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, metrics, optimizers
from engine.training import Trainer
from layers import Dense, Flatten, Sequential, mlp
from layers.layer import Layer

ROOT = Path(__file__).resolve().parent.parent
ENGINE_OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop",
                     pytest.param(optimizers.SGD(0.1, momentum=0.9, nesterov=True), id="sgd-nesterov")]
ENGINE_LOSSES = [losses.sparse_categorical_crossentropy, losses.categorical_crossentropy,
                 losses.mean_squared_error]


@pytest.mark.parametrize("optimizer", ENGINE_OPTIMIZERS)
@pytest.mark.parametrize("gradients", ["tape", "manual"])
def test_the_reference_trainer_with_any_engine_optimizer_is_all_engine_code(optimizer, gradients):
    trainer = Trainer(mlp((8,), 10), losses.sparse_categorical_crossentropy, optimizer, "xla", 4, gradients)
    assert trainer.user_code() is None


@pytest.mark.parametrize("loss", ENGINE_LOSSES, ids=lambda loss: loss.__name__)
def test_every_engine_loss_and_metric_is_engine_code(loss):
    model = Sequential([Flatten(), Dense(4, "relu", kernel_initializer="ones"), Dense(3, "softmax")])
    named = ["mean_absolute_error"] + (["accuracy"] if "categorical" in loss.__name__ else [])
    trainer = Trainer(model, loss, "sgd", "graph", metrics=named)
    assert trainer.user_code() is None


class Gate(Layer):
    """A user's layer with a Python `if` on a tensor: AutoGraph must turn it into tf.cond."""

    def call(self, inputs):
        if tf.reduce_sum(inputs) < 0.0:
            inputs = -inputs
        return inputs


class MyDense(Dense):
    """A user's subclass of an engine layer: its code overrides the engine's."""

    def call(self, inputs):
        return super().call(inputs) * 1.0


def my_loss(labels, predictions):
    loss = losses.sparse_categorical_crossentropy(labels, predictions)
    if loss > 1e6:  # a Python `if` on a tensor
        loss = loss * 0.0
    return loss


def my_activation(x):
    return tf.nn.relu(x)


class MySGD(optimizers.SGD):
    pass


class MyMetric(metrics.Mean):
    pass


@pytest.mark.parametrize("make, where", [
    (lambda: Trainer(Sequential([Flatten(), Gate(), Dense(10)]), losses.sparse_categorical_crossentropy, "sgd"),
     "Gate"),
    (lambda: Trainer(Sequential([Flatten(), MyDense(10)]), losses.sparse_categorical_crossentropy, "sgd"), "MyDense"),
    (lambda: Trainer(mlp((8,), 10), my_loss, "sgd"), "my_loss"),
    (lambda: Trainer(mlp((8,), 10), functools.partial(my_loss), "sgd"), "my_loss"),
    (lambda: Trainer(Sequential([Flatten(), Dense(8, my_activation), Dense(10)]),
                     losses.sparse_categorical_crossentropy, "sgd"), "my_activation"),
    (lambda: Trainer(Sequential([Flatten(), Dense(8, kernel_initializer=lambda shape, dtype, seed: tf.zeros(shape, dtype)),
                                 Dense(10)]), losses.sparse_categorical_crossentropy, "sgd"), "<lambda>"),
    (lambda: Trainer(mlp((8,), 10), losses.sparse_categorical_crossentropy, MySGD(0.1)), "MySGD"),
    (lambda: Trainer(mlp((8,), 10), losses.sparse_categorical_crossentropy, "sgd", metrics=[MyMetric]), "MyMetric"),
], ids=["layer", "subclassed-layer", "loss", "loss-in-a-partial", "activation", "initializer", "optimizer",
        "metric"])
def test_user_code_anywhere_the_step_reaches_is_found_and_named(make, where):
    found = make().user_code()
    assert found is not None and found.startswith(__name__) and where in found, found


@pytest.mark.parametrize("mode, steps_per_execution", [("graph", 1), ("graph", 4), ("xla", 4)])
def test_a_user_layer_and_loss_with_a_python_if_on_a_tensor_still_train_in_compiled_modes(mode,
                                                                                         steps_per_execution):
    tf.random.set_seed(0)
    model = Sequential([Flatten(), Dense(16, "relu"), Gate(), Dense(10, "softmax")])
    trainer = Trainer(model, my_loss, optimizers.SGD(0.1), mode, steps_per_execution)
    rng = np.random.default_rng(0)
    images, labels = rng.random((128, 4, 4), dtype=np.float32), rng.integers(0, 10, 128).astype(np.int32)
    history = trainer.fit(images, labels, epochs=2, batch_size=32)
    assert np.isfinite(history[-1]["loss"])


# Run in a fresh process: AutoGraph caches each rewrite for the life of a process, so in this one an
# earlier test's rewrites would hide a rewrite of the engine's functions from the count.
COUNT_REWRITES = """
import json, sys, numpy as np, tensorflow as tf
from tensorflow.python.autograph.pyct import transpiler
from engine import losses, optimizers
from engine.distribute.distributed_training import DistributedTrainer
from engine.training import Trainer
from layers import mlp
converted, original = [], transpiler.GenericTranspiler.transform_function
def counting(self, fn, user_context):
    converted.append(fn.__module__ + "." + fn.__qualname__)
    return original(self, fn, user_context)
transpiler.GenericTranspiler.transform_function = counting
mode, distributed = sys.argv[1], sys.argv[2] == "distributed"
strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if distributed else tf.distribute.get_strategy()
with strategy.scope():
    model, optimizer = mlp((32, 16), 10), optimizers.SGD(0.05)
arguments = (model, losses.sparse_categorical_crossentropy, optimizer, mode, 4)
trainer = DistributedTrainer(strategy, *arguments) if distributed else Trainer(*arguments)
images, labels = np.zeros((160, 28, 28), np.float32), np.zeros(160, np.int32)
trainer.fit(images, labels, epochs=1, batch_size=32, validation_data=(images, labels))
print(json.dumps(converted))
"""
LOOPS = ("engine.execution.run_steps", "engine.distribute.distributed_training.DistributedTrainer._compile_loop")


@pytest.mark.parametrize("mode, trainer", [("graph", "single"), ("xla", "single"), ("graph", "distributed")])
def test_tracing_the_engines_step_rewrites_only_the_loop_around_it(mode, trainer):
    result = subprocess.run([sys.executable, "-c", COUNT_REWRITES, mode, trainer], cwd=ROOT, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    converted = json.loads(result.stdout.splitlines()[-1])
    assert converted and all(name.startswith(LOOPS) for name in converted), converted


class SameAccuracy(metrics.SparseCategoricalAccuracy):
    """The engine's accuracy, defined here: user code, so the Trainer keeps AutoGraph for its steps."""


def _losses_of_one_block(mode, metric):
    """The reference model's losses over one 4-step block, through `Trainer.make_train_function`."""
    tf.random.set_seed(3)
    trainer = Trainer(mlp((32, 16), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.05), mode, 4,
                      metrics=[metric])
    rng = np.random.default_rng(1)
    images, labels = rng.random((256, 28, 28), dtype=np.float32), rng.integers(0, 10, 256).astype(np.int32)
    block = tf.constant(np.arange(4 * 32, dtype=np.int32).reshape(4, 32))
    step = trainer.make_train_function(images, labels, 32)
    return trainer.user_code(), step(*trainer.as_tensors(images, labels, 32), block).numpy()


@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_the_step_traced_as_written_computes_what_autographs_trace_computes_bit_for_bit(mode):
    as_written_by, as_written = _losses_of_one_block(mode, "accuracy")
    rewritten_by, rewritten = _losses_of_one_block(mode, functools.partial(SameAccuracy, "accuracy"))
    assert as_written_by is None and rewritten_by.endswith("SameAccuracy")
    np.testing.assert_array_equal(as_written, rewritten)

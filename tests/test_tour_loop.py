"""The tour's plain training loop (`python -m engine.tour --sections=loop`): a bare `for` loop over
`epoch_batches` with `tf.GradientTape`, the core loss and SGD gives exactly what `Trainer.fit` gives
in eager mode on the same batches: the same per-step losses and final weights, bit for bit, and the
same epoch loss and accuracy (to the float32 the Trainer sums them in)."""

import re

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers, tour
from engine.callbacks import LambdaCallback
from engine.tour import course
from engine.training import Trainer
from layers import mlp

SUBSET = 1000  # 32 steps, the last one of 8 images: the smaller last batch is compared too


@pytest.fixture(scope="module")
def loop_and_trainer(fashion_mnist_dir):
    """The section run as the tour runs it, on SUBSET images, and a Trainer's eager epoch on them."""
    course.TRAIN_SUBSET, saved = SUBSET, course.TRAIN_SUBSET
    try:
        lines = []
        namespace = tour.run("loop", lines.append)
    finally:
        course.TRAIN_SUBSET = saved
    images, labels = course.training_set(SUBSET)
    tf.random.set_seed(course.SEED)
    trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.01), "eager")
    step_losses = []
    history = trainer.fit(images, labels, epochs=1, batch_size=32, seed=course.SEED,
                          callbacks=[LambdaCallback(on_block_end=lambda e, s, l: step_losses.extend(l.numpy()))])
    return "\n".join(lines), namespace, trainer, step_losses, history[0]


def test_the_loop_takes_every_batch_of_one_epoch_and_prints_loss_and_accuracy(loop_and_trainer):
    text, namespace, _, _, _ = loop_and_trainer
    assert len(namespace["step_losses"]) == 32 and namespace["seen"] == SUBSET
    summary = re.search(r"^epoch 1 \(32 steps of 32 over 1,000 images\): loss (\S+), accuracy (\S+)$", text, re.M)
    assert summary, text
    assert float(summary.group(1)) == pytest.approx(namespace["loss_sum"] / SUBSET, abs=5e-5)
    assert len(re.findall(r"^step +\d+: batch loss", text, re.M)) == 0  # no 50th step in 32
    assert "with tf.GradientTape() as tape:" in text  # the terminal shows the code it runs


def test_each_step_loss_equals_the_trainers_eager_step(loop_and_trainer):
    _, namespace, _, trainer_losses, _ = loop_and_trainer
    np.testing.assert_array_equal(np.float32(namespace["step_losses"]), trainer_losses)  # the same ops, bit for bit


def test_epoch_loss_and_accuracy_equal_the_trainers_history(loop_and_trainer):
    _, namespace, _, _, logs = loop_and_trainer
    assert namespace["correct"] / namespace["seen"] == pytest.approx(logs["accuracy"], abs=1e-7)  # its float32
    assert namespace["loss_sum"] / namespace["seen"] == pytest.approx(logs["loss"], rel=1e-6)  # summed in float32


def test_final_weights_equal_the_trainers(loop_and_trainer):
    _, namespace, trainer, _, _ = loop_and_trainer
    loop_weights = namespace["model"].trainable_variables
    assert len(loop_weights) == 6
    for ours, theirs in zip(loop_weights, trainer.model.trainable_variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.name)
    tf.random.set_seed(course.SEED)
    initial = mlp((256, 128), 10)
    initial.build((None, 28, 28))
    assert not np.allclose(initial.trainable_variables[0].numpy(), loop_weights[0].numpy(), atol=1e-4)  # it learned

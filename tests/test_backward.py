"""Manual gradients: the backward pass written out, used by the Trainer, and the same as the tape's.

The step-1 gradients of the reference model agree with the tape's to float32 rounding (1e-6)
and in float64 to 1e-12; training with either gives the same numbers to float32 rounding in
every mode; a model the rules cannot cover is refused when the Trainer is made, naming the layer.
"""

import numpy as np
import pytest
import tensorflow as tf

from engine import activations, execution, gradients, losses, optimizers
from engine.training import Trainer
from layers import Dense, Flatten, Layer, Sequential, mlp

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("relu", [activations.relu, activations.relu_formula], ids=["relu", "relu_formula"])
@pytest.mark.parametrize("dtype, bound", [("float32", 1e-6), ("float64", 1e-12)])
def test_manual_and_tape_gradients_agree_on_the_reference_model_at_step_one(dtype, bound, relu):
    """With relu on TensorFlow's kernel or written out (engine/activations.py): both have the mask for their rule."""
    tf.random.set_seed(0)
    model = mlp((256, 128), 10, activation=relu, dtype=dtype)
    model.build((None, 28, 28))
    images, labels = tf.constant(RNG.random((32, 28, 28)), dtype), tf.constant(RNG.integers(0, 10, 32))
    tape_loss, tape_logits, tape = gradients.tape_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    manual_loss, manual_logits, manual = gradients.manual_gradients(
        model, losses.sparse_categorical_crossentropy, images, labels)
    assert float(tape_loss) == float(manual_loss)
    np.testing.assert_array_equal(tape_logits.numpy(), manual_logits.numpy())
    for variable, a, b in zip(model.trainable_variables, tape, manual):
        assert a.dtype == b.dtype == variable.dtype and a.shape == b.shape == variable.shape
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=bound, err_msg=variable.name)


@pytest.mark.parametrize("mode, steps_per_execution", [("eager", 1), ("graph", 1), ("graph", 4), ("xla", 4)])
def test_a_trainer_on_manual_gradients_trains_like_the_tape_in_every_mode(fashion_mnist, mode, steps_per_execution):
    images, labels = fashion_mnist.train_images[:640], fashion_mnist.train_labels[:640]
    results = {}
    for way in ("tape", "manual"):
        tf.random.set_seed(0)
        trainer = Trainer(mlp((64, 32), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1),
                          mode, steps_per_execution, gradients=way)
        history = trainer.fit(images, labels, epochs=2, batch_size=32)
        results[way] = (history, [v.numpy() for v in trainer.model.trainable_variables])
    (tape_history, tape_weights), (manual_history, manual_weights) = results["tape"], results["manual"]
    for tape_epoch, manual_epoch in zip(tape_history, manual_history):
        assert manual_epoch["loss"] == pytest.approx(tape_epoch["loss"], rel=1e-5)
        assert manual_epoch["accuracy"] == pytest.approx(tape_epoch["accuracy"], abs=2 / 640)
    for a, b in zip(tape_weights, manual_weights):
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert manual_history[-1]["loss"] < 0.8 * manual_history[0]["loss"], "it learns"


class Doubling(Layer):
    """A user's layer with a forward and no backward rule."""

    def call(self, inputs):
        return 2.0 * inputs


def test_a_layer_without_a_backward_rule_is_refused_when_the_trainer_is_made_naming_it():
    model = Sequential([Flatten(), Doubling(name="my_doubling"), Dense(3)])
    with pytest.raises(ValueError, match=r"gradients='manual' cannot run: Doubling 'my_doubling' has no backward rule"):
        Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), gradients="manual")
    Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), gradients="tape")  # the tape needs none


def test_an_activation_or_a_loss_without_a_rule_is_refused_naming_it():
    def swish(z):
        return z * tf.sigmoid(z)

    model = Sequential([Flatten(), Dense(4, activation=swish, name="swishy"), Dense(3)])
    with pytest.raises(ValueError, match=r"Dense 'swishy' has activation 'swish', which has no backward rule"):
        Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), gradients="manual")

    def hinge(y, p):
        return tf.reduce_mean(tf.nn.relu(1.0 - p))

    with pytest.raises(ValueError, match=r"the loss 'hinge' has no backward rule"):
        Trainer(mlp((4,), 3), hinge, optimizers.SGD(0.1), gradients="manual")


def test_an_unknown_way_is_refused():
    with pytest.raises(ValueError, match=r"gradients must be one of tape, manual, got 'numerical'"):
        Trainer(mlp((4,), 3), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), gradients="numerical")


def test_a_plain_function_in_a_sequential_is_an_activation_layer_with_its_rule():
    from engine import activations

    tf.random.set_seed(2)
    model = Sequential([Flatten(), Dense(8), activations.relu, Dense(3), activations.softmax])
    images, labels = tf.constant(RNG.random((6, 2, 2)), tf.float32), tf.constant(RNG.integers(0, 3, 6))
    assert model.output_activation is activations.softmax  # the last Activation: trained on the logits
    _, _, tape = gradients.tape_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    _, _, manual = gradients.manual_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    for a, b in zip(tape, manual):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-7)


REFERENCE_STEPS_PER_CALL = execution.steps_per_execution_for(execution.dense_train_flops(32, (784, 256, 128, 10)))


@pytest.mark.slow
def test_five_epochs_of_fashion_mnist_with_either_gradients_reach_the_same_test_accuracy(fashion_mnist):
    """The reference model, as train.py trains it (XLA, its default steps per call): within 0.003 of each other."""
    accuracies = {}
    for way in ("tape", "manual"):
        tf.random.set_seed(0)
        trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.01),
                          "xla", REFERENCE_STEPS_PER_CALL, gradients=way)
        trainer.fit(fashion_mnist.train_images, fashion_mnist.train_labels, epochs=5, batch_size=32)
        accuracies[way] = trainer.evaluate(fashion_mnist.test_images, fashion_mnist.test_labels)["accuracy"]
    assert abs(accuracies["tape"] - accuracies["manual"]) <= 0.003, accuracies
    assert min(accuracies.values()) > 0.84, accuracies

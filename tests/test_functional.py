"""The functional API: Input, layers called on symbols, Add/Concatenate, and Model — checked
against NumPy and against its tf.keras Functional twin, in training too."""

import dataclasses
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import activations, losses, optimizers
from engine.compare import keras_twin, parity
from engine.training import Trainer
from layers import Add, Concatenate, Dense, Flatten, Input, Model
from layers.functional import Symbol


def skip_model(units=32, classes=10, shape=(28, 28)):
    """Flatten -> Dense(relu) = h -> h + Dense(relu)(h) -> Dense(softmax): one skip connection."""
    inputs = Input(shape)
    hidden = Dense(units, activation="relu")(Flatten()(inputs))
    residual = Add()([hidden, Dense(units, activation="relu")(hidden)])
    return Model(inputs, Dense(classes, activation="softmax")(residual))


def test_calling_a_layer_on_a_symbol_builds_it_and_returns_the_output_symbol():
    inputs = Input((28, 28))
    dense = Dense(5)
    outputs = dense(Flatten()(inputs))
    assert inputs.shape.as_list() == [None, 28, 28]
    assert isinstance(outputs, Symbol) and outputs.shape.as_list() == [None, 5]
    assert dense.built and dense.kernel.shape == (784, 5)
    assert outputs.layer is dense and outputs.inputs[0].layer.__class__ is Flatten


def test_a_skip_connection_computes_h_plus_f_of_h():
    model = skip_model(units=4, shape=(3, 2))
    x = np.random.default_rng(0).normal(size=(5, 3, 2)).astype(np.float32)
    first, second, last = [layer for layer in model.layers if isinstance(layer, Dense)]
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    h = relu(x.reshape(5, 6) @ first.kernel.numpy() + first.bias.numpy())
    r = h + relu(h @ second.kernel.numpy() + second.bias.numpy())
    z = r @ last.kernel.numpy() + last.bias.numpy()
    expected = np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_eager_and_graph_agree_and_the_batch_may_be_unknown():
    model = skip_model(units=8)
    x = tf.random.stateless_uniform([7, 28, 28], seed=[1, 2])
    graph = tf.function(model).get_concrete_function(tf.TensorSpec([None, 28, 28]))
    assert graph.structured_outputs.shape.as_list() == [None, 10]
    np.testing.assert_array_equal(model(x).numpy(), graph(x).numpy())


def test_the_model_hands_the_step_its_logits_and_names_the_softmax_after_them():
    model = skip_model(units=8)
    images = tf.random.stateless_uniform([4, 28, 28], seed=[3, 4])
    logits = model.logits(images)
    assert logits.shape == (4, 10) and model.output_activation is activations.softmax
    np.testing.assert_array_equal(activations.softmax(logits).numpy(), model(images).numpy())


def test_trainer_runs_a_functional_model_the_same_in_every_mode(fashion_mnist):
    """One epoch on 512 images from the same weights: eager, graph and XLA (8 steps per call) agree."""
    images, labels = fashion_mnist.train_images[:512], fashion_mnist.train_labels[:512]
    histories = {}
    for mode, steps_per_execution in [("eager", 1), ("graph", 1), ("xla", 8)]:
        tf.random.set_seed(0)
        trainer = Trainer(skip_model(units=16), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1),
                          mode, steps_per_execution)
        histories[mode] = trainer.fit(images, labels, epochs=1, batch_size=32)[0]
    for mode in ("graph", "xla"):
        assert histories[mode]["loss"] == pytest.approx(histories["eager"]["loss"], rel=1e-5), mode
        assert histories[mode]["accuracy"] == pytest.approx(histories["eager"]["accuracy"], abs=1 / 512), mode


def test_variables_come_in_topological_order_kernel_before_bias_shared_layers_once():
    inputs = Input((4,))
    shared = Dense(4, activation="relu", name="shared")
    first = Dense(4, name="first")(inputs)
    model = Model(inputs, Concatenate()([shared(first), shared(shared(first))]))
    assert [v.name for v in model.trainable_variables] == [
        "first/kernel:0", "first/bias:0", "shared/kernel:0", "shared/bias:0"]
    assert model(tf.ones([2, 4])).shape == (2, 8)


def test_add_and_concatenate_match_keras():
    a, b = tf.random.stateless_normal([3, 5], seed=[0, 1]), tf.random.stateless_normal([3, 5], seed=[0, 2])
    np.testing.assert_array_equal(Add()([a, b, a]).numpy(), keras.layers.Add()([a, b, a]).numpy())
    np.testing.assert_array_equal(Concatenate()([a, b[:, :2]]).numpy(), keras.layers.Concatenate()([a, b[:, :2]]).numpy())
    assert Concatenate(axis=0).compute_output_shape([(3, 5), (None, 5)]).as_list() == [None, 5]


def test_merge_and_model_errors_name_what_was_received():
    with pytest.raises(ValueError, match=r"Add 'add_x' expected inputs of one shape, "
                                         r"got shapes \['\(None, 3\)', '\(None, 4\)'\]"):
        Add(name="add_x")([Input((3,)), Input((4,))])
    with pytest.raises(ValueError, match=r"Concatenate 'cat' expected a list of at least 2 inputs"):
        Concatenate(name="cat")([tf.ones([2, 3])])
    orphan, inputs = Input((3,), name="orphan"), Input((3,), name="given")
    with pytest.raises(ValueError, match=r"outputs depend on \[<Symbol 'orphan'.*not among its inputs"):
        Model(inputs, Add()([inputs, orphan]))
    model = Model(inputs, Dense(2)(inputs), name="small")
    with pytest.raises(ValueError, match=r"Model 'small' expected inputs of shape \(None, 3\) for 'given', "
                                         r"got shape \(2, 4\)"):
        model(tf.ones([2, 4]))


def test_summary_lists_connections_and_counts_the_same_parameters_as_the_keras_twin():
    model = skip_model(units=32)
    lines = []
    model.summary(print_fn=lines.append)
    twin = keras_twin.functional_twin(model)
    add_row = next(line for line in lines if "(Add)" in line)
    first, second = [layer.name for layer in model.layers if isinstance(layer, Dense)][:2]
    assert add_row.endswith(f"{first}, {second}") and "(None, 32)" in add_row
    assert lines[-1] == f"Total params: {twin.count_params():,}" == "Total params: 26,506"
    assert [l.name for l in twin.layers[1:]] == [l.name for l in model.layers]


def skip_sides(setup, input_shape, num_classes):
    """parity.compare's two sides for the skip-connection model: ours, and its Keras Functional twin."""
    tf.random.set_seed(setup.seed)
    ours = skip_model(units=setup.hidden[0], classes=num_classes, shape=tuple(input_shape))
    our_loss = functools.partial(losses.sparse_categorical_crossentropy, from_logits=False)
    return ours, our_loss, keras_twin.functional_twin(ours), parity.RecordingLoss(from_logits=False)


def test_a_skip_connection_model_trains_like_its_keras_functional_twin(fashion_mnist):
    """Same weights, same batches, same SGD, 1 epoch on 3,000 images: Trainer.fit and the tape
    steps against Keras's compile + fit, within the parity bounds of tests/test_parity.py."""
    setup = dataclasses.replace(parity.ParitySetup(), hidden=(64,), epochs=1, recorded_steps=94)
    report = parity.compare(setup, (fashion_mnist.train_images[:3000], fashion_mnist.train_labels[:3000]),
                            (fashion_mnist.test_images[:2000], fashion_mnist.test_labels[:2000]), sides=skip_sides)
    summary = report.summary()
    assert summary["forward_max_abs_diff"] <= 1e-6, summary
    assert summary["step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["fit_step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["step1_gradient_max_abs_diff"] <= 1e-6, summary
    assert len(report.fit_steps) == 94 and report.epochs[0]["engine_test_accuracy"] > 0.6, "and it learned"

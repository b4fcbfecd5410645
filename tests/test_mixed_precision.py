"""Keras's "mixed_bfloat16" policy: float32 variables and optimizer state, bfloat16 computation, the
loss in float32. Checked against Keras under the same policy, tape against manual gradients, and
training in every mode against the same training in float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine import execution, gradients, losses, optimizers, training
from engine.compare import keras_twin
from engine.training import Trainer
from layers import Add, Concatenate, Dense, Flatten, Input, Model, mlp
from tests.test_reliability_cli import run_train, tfds_dir, tiny_mnist_dir  # noqa: F401

MODES = [("eager", 1), ("graph", 1), ("xla", 8)]


def reference(dtype, seed=0):
    tf.random.set_seed(seed)
    model = mlp((64, 32), 10, dtype=dtype)
    model.build((None, 28, 28))
    return model


@pytest.fixture(scope="module")
def digits(mnist_t10k_dir):
    from engine.data import idx

    images = idx.read_idx(mnist_t10k_dir / "t10k-images-idx3-ubyte.gz")[:2048].astype(np.float32) / 255.0
    labels = idx.read_idx(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz")[:2048].astype(np.int64)
    return images, labels


def test_variables_stay_float32_while_the_layers_compute_in_bfloat16():
    model = reference("mixed_bfloat16")
    assert {v.dtype for v in model.trainable_variables} == {tf.float32}
    assert all(layer.compute_dtype == tf.bfloat16 and layer.dtype_policy == "mixed_bfloat16" for layer in model.layers)
    assert model(tf.zeros([2, 28, 28])).dtype == tf.bfloat16
    assert reference("float32").layers[1].compute_dtype == tf.float32


def test_mixed_float16_is_refused_because_it_needs_loss_scaling():
    with pytest.raises(ValueError, match="mixed_float16 needs loss scaling.*use 'mixed_bfloat16'"):
        Dense(3, dtype="mixed_float16")
    with pytest.raises(ValueError, match="expected a floating dtype or 'mixed_bfloat16', got 'int32'"):
        Dense(3, dtype="int32")


def test_the_forward_pass_and_gradients_match_keras_under_the_same_policy(digits):
    images, labels = tf.constant(digits[0][:64]), tf.constant(digits[1][:64])
    model = reference("mixed_bfloat16")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        twin = keras_twin.reference_mlp((64, 32), 10)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    for theirs, ours in zip(twin.trainable_variables, model.trainable_variables):
        theirs.assign(ours)
    ours, theirs = model(images), twin(images)
    assert theirs.dtype == ours.dtype == tf.bfloat16
    # one bfloat16 rounding of a probability in (0, 1): 2^-8
    np.testing.assert_allclose(tf.cast(ours, tf.float32), tf.cast(theirs, tf.float32), atol=2 ** -8)
    loss, _, ours_grads = gradients.tape_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
    with tf.GradientTape() as tape:
        their_loss = keras.losses.SparseCategoricalCrossentropy()(labels, twin(images))
    their_grads = tape.gradient(their_loss, twin.trainable_variables)
    assert loss.dtype == tf.float32 and abs(float(loss) - float(their_loss)) <= 1e-2 * float(their_loss)
    for g_ours, g_theirs in zip(ours_grads, their_grads):
        assert g_ours.dtype == tf.float32
        scale = float(tf.reduce_max(tf.abs(g_theirs)))
        assert float(tf.reduce_max(tf.abs(g_ours - g_theirs))) <= 0.05 * scale


def test_manual_gradients_equal_the_tapes_under_mixed_precision(digits):
    """The same casts in the same places: the backward rules cast delta to bfloat16 as the tape's cast
    does, and dL/dW back to float32 (measured: equal to the last bit on the reference model)."""
    images, labels = tf.constant(digits[0][:64]), tf.constant(digits[1][:64])
    inputs = Input((28, 28))
    flat = Flatten(dtype="mixed_bfloat16")(inputs)
    hidden = Dense(16, activation="relu", dtype="mixed_bfloat16")(flat)
    skip = Add(dtype="mixed_bfloat16")([hidden, Dense(16, activation="relu", dtype="mixed_bfloat16")(hidden)])
    joined = Concatenate(dtype="mixed_bfloat16")([skip, hidden])
    functional = Model(inputs, Dense(10, activation="softmax", dtype="mixed_bfloat16")(joined))
    for model in (reference("mixed_bfloat16"), functional):
        tape_loss, _, tape = gradients.tape_gradients(model, losses.sparse_categorical_crossentropy, images, labels)
        manual_loss, _, manual = gradients.manual_gradients(model, losses.sparse_categorical_crossentropy, images,
                                                            labels)
        assert float(tape_loss) == float(manual_loss)
        for a, b in zip(tape, manual):
            assert b.dtype == tf.float32
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize("mode, steps_per_execution", MODES)
@pytest.mark.parametrize("how", ["tape", "manual"])
def test_it_trains_in_every_mode_as_float32_does_to_bfloat16_precision(digits, mode, steps_per_execution, how):
    images, labels = digits
    results = {}
    for dtype in ("float32", "mixed_bfloat16"):
        trainer = Trainer(reference(dtype), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), mode,
                          steps_per_execution, how)
        history = trainer.fit(images[:1536], labels[:1536], epochs=3, batch_size=32)
        results[dtype] = history[-1]["loss"], trainer.evaluate(images[1536:], labels[1536:])["accuracy"]
        assert {v.dtype for v in trainer.model.trainable_variables} == {tf.float32}
    (loss32, accuracy32), (loss16, accuracy16) = results["float32"], results["mixed_bfloat16"]
    assert loss16 < 0.6 and accuracy16 > 0.75, results  # float32 measured: 0.483, 0.799
    assert abs(loss16 - loss32) < 0.05 and abs(accuracy16 - accuracy32) < 0.03, results


def test_graph_mode_holds_a_bfloat16_models_data_in_bfloat16_and_xla_and_float32_models_in_float32():
    assert execution.data_dtype("graph", tf.bfloat16) == tf.bfloat16
    for mode, dtype in [("xla", tf.bfloat16), ("eager", tf.bfloat16), ("graph", tf.float32), ("graph", tf.float64)]:
        assert execution.data_dtype(mode, dtype) == tf.float32, (mode, dtype)
    assert training.compute_dtype(reference("mixed_bfloat16")) == tf.bfloat16
    assert training.compute_dtype(reference("float32")) == tf.float32
    # One float32 layer reads float32 inputs: pre-rounding them to bfloat16 would change its numbers.
    inputs = Input((28, 28))
    flat = Flatten(dtype="mixed_bfloat16")(inputs)
    mixed = Model(inputs, Add()([Dense(10, dtype="mixed_bfloat16")(flat), Dense(10)(Flatten()(inputs))]))
    assert training.compute_dtype(mixed) == tf.float32
    assert training.compute_dtype(tf.Module()) == tf.float32  # a model that says nothing: as given


def test_holding_the_data_in_bfloat16_changes_no_number(digits, monkeypatch):
    """The model casts its inputs to bfloat16 first, so graph mode's data set held in bfloat16 trains to
    the same weights, bit for bit, as the same run fed float32 (the data dtype forced back)."""
    images, labels = digits
    weights = {}
    for held in ("bfloat16", "float32"):
        if held == "float32":
            monkeypatch.setattr(execution, "data_dtype", lambda mode, compute_dtype: tf.float32)
        trainer = Trainer(reference("mixed_bfloat16"), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1),
                          "graph", 8)
        assert trainer.as_tensors(images[:512], labels[:512], 32)[0].dtype == held
        history = trainer.fit(images[:512], labels[:512], epochs=2, batch_size=32)
        weights[held] = [v.numpy() for v in trainer.model.trainable_variables], history[-1]["loss"]
    assert weights["bfloat16"][1] == weights["float32"][1]
    for a, b in zip(weights["bfloat16"][0], weights["float32"][0]):
        np.testing.assert_array_equal(a, b)


def test_the_command_line_trains_mixed_and_exports_float32(run_train, tiny_mnist_dir, tmp_path):  # noqa: F811
    """--precision=mixed_bfloat16 trains (its checkpoints hold float32 weights) and exports a float32
    model: the served output is float32 and no op of the exported program computes in bfloat16."""
    from tests.test_reliability_cli import final_weights

    status, out, err = run_train("--precision=mixed_bfloat16", f"--output_dir={tmp_path / 'run'}",
                                 f"--export_dir={tmp_path / 'export'}")
    assert status == 0, err[-2000:]
    weights = final_weights(tmp_path / "run")
    assert {value.dtype for name, value in weights.items() if "kernel" in name} == {np.dtype("float32")}
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    serve = loaded.signatures["serving_default"]
    probabilities = next(iter(serve(tf.random.uniform([8, 28, 28], seed=1)).values()))
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, atol=1e-5)
    program = str(serve.graph.as_graph_def())  # the signature and every function it calls
    assert "DT_FLOAT" in program and "DT_BFLOAT16" not in program

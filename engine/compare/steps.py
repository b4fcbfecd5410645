"""The Keras comparison step by step: both models through their own gradients and optimizer, batch by batch.

`parity.compare` runs this before the two `fit`s: with no compiled loop in between, a difference
here is the math's (the loss, a gradient, the update), and `relu_splits` shows the one thing that
can make two float32-equal trainings part: a hidden unit active in one model and not the other.
"""

from typing import Dict, List

import keras
import tensorflow as tf

from engine import gradients
from engine.batches import epoch_batches
from engine.compare import keras_twin
from engine.compare.weights import max_abs_diff, max_rel_diff, weights_diff
from layers import Model


def relu_splits(ours, theirs, images: tf.Tensor) -> int:
    """How many (example, hidden unit) pairs are active (> 0) in one model and not the other.

    Walks both layer stacks side by side; every hidden layer of the MLP is a ReLU layer. A
    functional model (a graph, not a stack) is compared at its ReLU layers, matched by name.
    """
    if isinstance(ours, Model):
        return sum(int(tf.reduce_sum(tf.cast((a > 0) != (b > 0), tf.int32))) for a, b in zip(
            keras_twin.relu_outputs(ours, images), keras_twin.twin_relu_outputs(ours, theirs, images), strict=True))
    ours_h, theirs_h, splits = images, images, 0
    for our_layer, their_layer in zip(ours.layers[:-1], theirs.layers[:-1]):
        ours_h, theirs_h = our_layer(ours_h), their_layer(theirs_h)
        if isinstance(their_layer, keras.layers.Dense):
            splits += int(tf.reduce_sum(tf.cast((ours_h > 0) != (theirs_h > 0), tf.int32)))
    return splits


def compare_steps(setup, ours, our_loss, theirs, their_loss, x, y) -> List[Dict]:
    """Both sides' gradients and optimizer on the first `setup.recorded_steps` batches, one by one: the
    engine's as its step computes them (`setup.gradients`: tape or manual), Keras's by its tape.

    Each row: both losses and their relative difference, each gradient's largest absolute and
    relative difference, the weights' largest difference after the update, and the ReLU splits
    before it (`relu_splits`): where the first split appears, the trajectories start to part.
    """
    our_gradients = gradients.sharded(gradients.by_name(setup.gradients), setup.shards)
    our_optimizer, their_optimizer = keras_twin.optimizer_pair(setup)
    rows = []
    for step, index in enumerate(epoch_batches(len(y), setup.batch_size, setup.seed, epoch=1), 1):
        if step > setup.recorded_steps:
            break
        xb, yb = tf.constant(x[index]), tf.constant(y[index])
        splits = relu_splits(ours, theirs, xb)
        our_value, _, our_grads = our_gradients(ours, our_loss, xb, yb)  # the engine's step: its logits route
        with tf.GradientTape() as tape:
            their_value = their_loss(yb, theirs(xb))
        their_grads = tape.gradient(their_value, theirs.trainable_variables)
        our_optimizer.apply_gradients(zip(our_grads, ours.trainable_variables))
        their_optimizer.apply_gradients(zip(their_grads, theirs.trainable_variables))
        rows.append({
            "step": step, "engine_loss": float(our_value), "keras_loss": float(their_value),
            "loss_rel_diff": abs(float(our_value) - float(their_value)) / abs(float(their_value)),
            "gradient_max_abs_diff": [max_abs_diff(a, b) for a, b in zip(our_grads, their_grads)],
            "gradient_max_rel_diff": [max_rel_diff(a, b) for a, b in zip(our_grads, their_grads)],
            "weights_max_abs_diff": weights_diff(ours.trainable_variables, theirs.trainable_variables),
            "relu_splits": splits,
        })
    return rows

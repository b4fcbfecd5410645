"""The ceiling experiment's skeleton step (bench/ceiling.py) does the real work it stands for: its
hand-written gradients are those of its loss, and it trains when compiled as the engine's modes."""

import numpy as np
import pytest
import tensorflow as tf

from bench import ceiling


def test_the_skeleton_step_is_gradient_descent_on_its_squared_error():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(20, 4, 4)), tf.float32)
    targets = tf.one_hot(rng.integers(0, 3, size=20), 3)
    index = tf.constant([3, 7, 11, 2, 19], tf.int32)
    skeleton = ceiling.Skeleton(sizes=(16, 8, 6, 3), learning_rate=0.1)
    before = [kernel.numpy() for kernel in skeleton.kernels]

    with tf.GradientTape() as tape:  # the oracle: the same loss, differentiated by TensorFlow
        x = tf.reshape(tf.gather(images, index), [5, 16])
        out = x @ skeleton.kernels[0] @ skeleton.kernels[1] @ skeleton.kernels[2]
        loss = tf.reduce_sum(tf.square(out - tf.gather(targets, index))) / (2 * 5)
    expected = [w - 0.1 * g for w, g in zip(before, tape.gradient(loss, skeleton.kernels))]

    returned = skeleton.step(tf.gather(images, index), tf.gather(targets, index))
    assert float(returned) == pytest.approx(float(loss), rel=1e-6)
    for kernel, want in zip(skeleton.kernels, expected):
        np.testing.assert_allclose(kernel.numpy(), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode,steps_per_execution", [("graph", 1), ("xla", 4)])
def test_the_skeleton_runner_trains_in_every_compiled_mode(mode, steps_per_execution):
    """Runs as the benchmark runs it, and learns: the loss of a fixed problem goes down."""
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(256, 28, 28)).astype(np.float32)
    labels = (images.reshape(256, -1)[:, :392].sum(-1) > images.reshape(256, -1)[:, 392:].sum(-1)).astype(np.int32)
    runner = ceiling.SkeletonSteps(mode, steps_per_execution, images, labels, batch_size=32)
    first = runner(1)
    last = min(runner(8) for _ in range(3))
    assert runner.steps_per_call == steps_per_execution and last < first

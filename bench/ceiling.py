"""The ceiling experiment: how fast can any training step of the reference model's shape run here?

A *skeleton* step keeps only the work that no correct training step of this model can skip,
with its gradients written out by hand instead of taped:

    x = images[index]                      # [B, 784], gathered as the engine gathers (run_steps)
    h1 = x @ W1;  h2 = h1 @ W2;  out = h2 @ W3            # 3 forward matmuls
    d3 = (out - y) / B                     # the gradient of ||out - y||^2 / 2B
    dW3 = h2^T d3;  d2 = d3 W3^T;  dW2 = h1^T d2;  d1 = d2 W2^T;  dW1 = x^T d1   # 5 backward
    W <- W - lr dW                         # for each of the three kernels

That is a linear network trained on squared error: the same 8 matmuls and the same 3 kernel
updates as the reference model's step, and nothing else (no biases, ReLU, softmax, loss value,
metrics or tape). Run under XLA as the engine's fused mode runs (K steps per call), its speed is
what the arithmetic alone reaches here: set next to Keras in `bench.report`, it shows whether a
speed target is within reach of any step of this model on this machine, before any question of
how well the engine is written.

Under XLA the engine's full step measured at the skeleton's speed (96-118% of it across runs:
what the real step adds is lost in this machine's noise), so the skeleton is the practical
ceiling of the XLA mode, not a strict bound. In graph mode it is not even that: there each op's
dispatch, not the arithmetic, sets the pace, and the skeleton ran no faster than the engine's
full step (its plain MatMul against the engine's fused MatMul + BiasAdd), so the report does not
run it that way.
"""

import functools
from typing import Sequence

import numpy as np
import tensorflow as tf

from bench import matmul_step, workloads
from engine import execution


class Skeleton(tf.Module):
    """The three kernels of a bias-free Dense stack and the skeleton step that trains them."""

    def __init__(self, sizes: Sequence[int] = workloads.layer_sizes(), learning_rate: float = workloads.LEARNING_RATE,
                 seed: int = 0):
        super().__init__(name="skeleton")
        initial = tf.random.stateless_uniform
        self.kernels = [tf.Variable(initial([fan_in, fan_out], [seed, layer], -0.05, 0.05), name=f"kernel_{layer}")
                        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.learning_rate = learning_rate

    def step(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """One step on a batch of `images` [B, ...] and one-hot `targets` [B, classes]; returns the
        batch's squared error, ||out - y||^2 / 2B."""
        w1, w2, w3 = self.kernels
        batch = tf.cast(tf.shape(images)[0], tf.float32)
        x = tf.reshape(images, [tf.shape(images)[0], -1])  # [B, 784]
        # The eight matmuls of the module docstring, as bench/matmul_step.py writes them for every framework.
        out, gradients = matmul_step.chained_step(x, w1, w2, w3, _matmul, lambda out: (out - targets) / batch)
        for kernel, gradient in zip(self.kernels, gradients):  # dW1 [784, 256], dW2 [256, 128], dW3 [128, 10]
            kernel.assign_sub(self.learning_rate * gradient)
        return tf.reduce_sum(tf.square(out - targets)) / (2 * batch)


def _matmul(a, b, transpose_a: bool, transpose_b: bool):
    return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)


class SkeletonSteps:
    """A step runner (as `workloads.EngineSteps`) for the skeleton compiled as `mode` with K steps
    per call, the way `Trainer` compiles the real step: `execution.run_steps` (or `run_one_step`
    at K=1) gathers each batch from the data held as tensors, fed [K, batch] index blocks."""

    def __init__(self, mode: str, steps_per_execution: int, images: np.ndarray, labels: np.ndarray,
                 batch_size: int = workloads.BATCH_SIZE, seed: int = 0):
        self.skeleton, self.steps_per_call = Skeleton(seed=seed), steps_per_execution
        self.images = tf.constant(images, tf.float32)
        self.targets = tf.one_hot(labels, 10)
        self._blocks = workloads.steady_blocks(len(labels), batch_size, steps_per_execution, seed)
        signature = (tf.TensorSpec((None,) + tuple(self.images.shape[1:]), tf.float32),
                     tf.TensorSpec((None, 10), tf.float32), tf.TensorSpec((None, None), tf.int32))
        runner = execution.run_steps if steps_per_execution > 1 else execution.run_one_step
        self._steps = execution.compile_step(functools.partial(runner, self.skeleton.step), mode, signature)

    def __call__(self, calls: int) -> float:
        for _ in range(calls):
            losses = self._steps(self.images, self.targets, tf.constant(next(self._blocks)))
        return float(losses.numpy()[-1])

"""The step's eight matmuls chained as one step, with SGD's update: the matmul-only step, a true bound.

`bench/kernels.py` times each product alone, `REPEATS` to a loop, so its "matmul-only steps/s"
is no bound: it pays the loop once per product, and its iterations share one unchanging weight
and depend on nothing before them, which no training step allows. Here one loop iteration is the step with everything but the matmuls and the update taken
out, on the reference MLP's shapes (x: the batch's images, W1..W3 the kernels):

    forward    h1 = x @ W1        h2 = h1 @ W2        z = h2 @ W3
    backward   d3 = z             (the loss's gradient stands in: same shape, no softmax)
               g3 = h2^T @ d3     d2 = d3 @ W3^T      g2 = h1^T @ d2
               d1 = d2 @ W2^T     g1 = x^T @ d1
    update     W_j <- W_j - LEARNING_RATE * g_j

The same eight products in the same order as the real step, each depending on what it depends on
there, and SGD's update; no relu, bias, softmax, loss, gather or metrics. Every iteration reads
its own slice of a stacked x, and the next iteration's forward pass needs this one's updated
weights, as in training: no iteration can start before the last has finished (a `tf.while_loop`
in graph mode otherwise runs iterations side by side), and no library can keep a weight's
repacked copy from one product to the next (oneDNN does, for a weight that never changes). A
real training step does all of this and more, so a framework's step on the same dot runs no
faster than this loop (up to the compiler's scheduling): the matmul-only bound, with the loop
paid once per step as the engine's K-step call pays it.

`bench/ceiling.py` runs the same chain (`chained_step`) in TensorFlow alone, with the engine's
gather and a squared-error gradient, beside Keras in `bench.report`; here it runs in every
framework `bench.kernels` measures, so each gets its own dot's bound.
"""

from typing import Callable, Optional, Sequence, Tuple

import numpy as np

WEIGHT_SCALE = 0.05  # keeps the chain's values near 1 (Glorot's scale for these widths), far from overflow
LEARNING_RATE = 1e-4  # small enough that the weights stay near their start over any loop here


def operands(batch_size: int, sizes: Sequence[int], repeats: int, seed: int = 0,
             scale: float = WEIGHT_SCALE) -> Tuple[np.ndarray, list]:
    """x stacked `repeats` times [repeats, batch, sizes[0]], and the kernels [sizes[j], sizes[j+1]]."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((repeats, batch_size, sizes[0]), dtype=np.float32)
    kernels = [scale * rng.standard_normal((fan_in, fan_out), dtype=np.float32)
               for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
    return x, kernels


def chained_step(x, w1, w2, w3, matmul: Callable, output_gradient: Optional[Callable] = None) -> tuple:
    """One iteration's (z, (g1, g2, g3)) in any array library: `matmul(a, b, ta, tb)` is a^T? @ b^T?.

    The backward pass starts from `output_gradient(z)`, z itself by default (this module's loop);
    `bench/ceiling.py` passes squared error's, (z - y) / B."""
    h1 = matmul(x, w1, False, False)
    h2 = matmul(h1, w2, False, False)
    z = matmul(h2, w3, False, False)
    d3 = z if output_gradient is None else output_gradient(z)
    g3 = matmul(h2, d3, True, False)
    d2 = matmul(d3, w3, False, True)
    g2 = matmul(h1, d2, True, False)
    d1 = matmul(d2, w2, False, True)
    g1 = matmul(x, d1, True, False)
    return z, (g1, g2, g3)


def numpy_matmul(a, b, transpose_a: bool, transpose_b: bool):
    return (a.T if transpose_a else a) @ (b.T if transpose_b else b)


def reference(x: np.ndarray, kernels: list) -> list:
    """What every framework's loop returns: the kernels after one SGD update per slice of x, in NumPy."""
    for slice_ in x:
        kernels = [w - LEARNING_RATE * g for w, g in zip(kernels, chained_step(slice_, *kernels, numpy_matmul)[1])]
    return kernels


def tensorflow_loop(tf, jit: bool) -> Callable:
    """(x, w1, w2, w3) -> the updated [w1, w2, w3]: the chain `len(x)` times in one `tf.while_loop`, compiled by
    `tf.function` (graph: TensorFlow's MatMul kernels) or with `jit_compile=True` (XLA's dot)."""
    def matmul(a, b, transpose_a, transpose_b):
        return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)

    @tf.function(jit_compile=jit)
    def loop(x, w1, w2, w3):
        def body(i, *kernels):
            return (i + 1, *(w - LEARNING_RATE * g for w, g in zip(kernels, chained_step(x[i], *kernels, matmul)[1])))

        return tf.while_loop(lambda i, *_: i < tf.shape(x)[0], body, (0, w1, w2, w3))[1:]
    return loop


def tensorflow_gathered_loop(tf) -> Callable:
    """(images [N, 784], index [K, B], w1, w2, w3) -> the updated kernels: `tensorflow_loop` under XLA
    with each iteration's x gathered from the whole data set, as the engine's `run_steps` gathers."""
    def matmul(a, b, transpose_a, transpose_b):
        return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)

    @tf.function(jit_compile=True)
    def loop(images, index, w1, w2, w3):
        def body(i, *kernels):
            step = chained_step(tf.gather(images, index[i]), *kernels, matmul)[1]
            return (i + 1, *(w - LEARNING_RATE * g for w, g in zip(kernels, step)))

        return tf.while_loop(lambda i, *_: i < tf.shape(index)[0], body, (0, w1, w2, w3))[1:]
    return loop


def jax_loop(jax, jnp) -> Callable:
    """The same under `jax.jit`, the chain in a `lax.fori_loop`."""
    def matmul(a, b, transpose_a, transpose_b):
        return (a.T if transpose_a else a) @ (b.T if transpose_b else b)

    @jax.jit
    def loop(x, w1, w2, w3):
        def body(i, kernels):
            return tuple(w - LEARNING_RATE * g for w, g in zip(kernels, chained_step(x[i], *kernels, matmul)[1]))

        return jax.lax.fori_loop(0, x.shape[0], body, (w1, w2, w3))
    return loop


def torch_loop(torch) -> Callable:
    """The same in PyTorch eager: a Python loop (its dispatch is per op in any case)."""
    def matmul(a, b, transpose_a, transpose_b):
        return (a.t() if transpose_a else a) @ (b.t() if transpose_b else b)

    def loop(x, w1, w2, w3):
        kernels = [w1.clone(), w2.clone(), w3.clone()]
        with torch.no_grad():
            for i in range(x.shape[0]):
                for w, g in zip(kernels, chained_step(x[i], *kernels, matmul)[1]):
                    w.sub_(LEARNING_RATE * g)  # in place, as torch.optim.SGD updates
        return kernels
    return loop

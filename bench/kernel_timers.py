"""How `bench/kernels.py` times a product in each framework: one compiled loop of `repeats` products.

Each timer takes NumPy operands and returns the best of `calls` timed calls, in seconds, after
one untimed call that compiles and warms the caches. The loops, per framework (why these, and
what a loop's cost does to the figures: bench/kernels.py):

- TensorFlow: `tf.while_loop` under `tf.function` (graph: TensorFlow's MatMul, oneDNN) or with
  `jit_compile=True` (XLA's dot; with XLA_FLAGS, a library's);
- JAX: `jax.lax.fori_loop` under `jax.jit`;
- PyTorch: a Python loop of `torch.matmul`, eager, on every core.

`chained_timer` times the eight products chained as one training step instead (bench/matmul_step.py).
"""

import os
import time
from typing import Callable, Sequence

from bench import matmul_step


def operands(m: int, k: int, n: int, layout: str, repeats: int):
    """NumPy float32 operands: A stacked `repeats` times (one slice per product), B once."""
    import numpy as np

    rng = np.random.default_rng(0)
    a_shape = {"nn": (m, k), "tn": (k, m), "nt": (m, k)}[layout]
    b_shape = {"nn": (k, n), "tn": (k, n), "nt": (n, k)}[layout]
    return (rng.standard_normal((repeats, *a_shape), dtype=np.float32),
            rng.standard_normal(b_shape, dtype=np.float32))


def best_seconds(call, calls: int) -> float:
    call()  # compile, warm the caches
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def tensorflow_timer(jit: bool):
    from engine import startup

    tf = startup.import_tensorflow()

    def timer(a, b, layout, repeats, calls):
        a, b = tf.constant(a), tf.constant(b)
        transpose_a, transpose_b = layout == "tn", layout == "nt"

        @tf.function(jit_compile=jit)
        def loop(a, b):
            out_shape = tf.shape(tf.matmul(a[0], b, transpose_a=transpose_a, transpose_b=transpose_b))

            def body(i, total):
                return i + 1, total + tf.matmul(a[i], b, transpose_a=transpose_a, transpose_b=transpose_b)

            return tf.while_loop(lambda i, _: i < repeats, body, (0, tf.zeros(out_shape)))[1]

        return best_seconds(lambda: loop(a, b).numpy(), calls)
    return timer, tf.__version__


def jax_timer():
    import jax
    import jax.numpy as jnp

    def timer(a, b, layout, repeats, calls):
        a, b = jnp.asarray(a), jnp.asarray(b)
        product = {"nn": lambda x, y: x @ y, "tn": lambda x, y: x.T @ y, "nt": lambda x, y: x @ y.T}[layout]

        @jax.jit
        def loop(a, b):
            total = jnp.zeros(product(a[0], b).shape, jnp.float32)
            return jax.lax.fori_loop(0, repeats, lambda i, total: total + product(a[i], b), total)

        return best_seconds(lambda: loop(a, b).block_until_ready(), calls)
    return timer, jax.__version__


def torch_timer():
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # 2 here: its best setting in the peers experiment

    def timer(a, b, layout, repeats, calls):
        a, b = torch.from_numpy(a), torch.from_numpy(b)
        product = {"nn": lambda x, y: x @ y, "tn": lambda x, y: x.t() @ y, "nt": lambda x, y: x @ y.t()}[layout]

        def loop():
            with torch.no_grad():
                total = product(a[0], b)
                for i in range(1, repeats):
                    total = total + product(a[i], b)
            return total

        return best_seconds(loop, calls)
    return timer, torch.__version__


def chained_timer(framework: str, sizes: Sequence[int]) -> Callable:
    """`timer(batch_size, repeats, calls)` -> seconds of `repeats` chained steps (bench/matmul_step.py)."""
    if framework.startswith("tf-"):
        from engine import startup

        tf = startup.import_tensorflow()
        loop = matmul_step.tensorflow_loop(tf, jit=framework != "tf-graph")
        wrap, done = tf.constant, lambda out: out[0].numpy()
    elif framework == "jax":
        import jax
        import jax.numpy as jnp

        loop = matmul_step.jax_loop(jax, jnp)
        wrap, done = jnp.asarray, lambda out: out[0].block_until_ready()
    else:
        import torch

        loop = matmul_step.torch_loop(torch)
        wrap, done = torch.from_numpy, lambda out: out[0]

    def timer(batch_size, repeats, calls):
        x, kernels = matmul_step.operands(batch_size, sizes, repeats)
        arguments = [wrap(x), *map(wrap, kernels)]
        return best_seconds(lambda: done(loop(*arguments)), calls)
    return timer

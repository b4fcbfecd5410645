"""How the report measures: a matmul roofline, steady-state throughput, and first-epoch cost.

Every timing ends on a value read back to Python (`.numpy()`, `float`), so it covers the work
and not only its dispatch (on a GPU, ops return before they finish).
"""

import statistics
import time
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from bench import workloads

WARMUP_CALLS = 2  # the first call traces and compiles; the second meets any retrace (a new input spec)


def matmul_gflops(n: int, chain: int = 8, repeats: int = 5) -> float:
    """Float32 GFLOP/s of square [n, n] matmuls, `chain` of them in one tf.function, best of `repeats`.

    Each product feeds the next (c = c @ b): `chain` independent `a @ b` would be merged into one
    by grappler's common-subexpression elimination. b is scaled by 1/sqrt(n) so c keeps its size
    (no overflow, no denormals, both of which change the speed).
    """
    a = tf.random.normal([n, n], seed=1)
    b = tf.random.normal([n, n], seed=2) / np.sqrt(n)

    @tf.function
    def chained(c, b):
        for _ in range(chain):
            c = tf.matmul(c, b)  # [n, n] @ [n, n]
        return tf.reduce_sum(c)

    chained(a, b).numpy()  # trace
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        chained(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return chain * 2 * n ** 3 / best / 1e9


def roofline(sizes: Sequence[int]) -> Dict:
    """The float32 matmul roofline: GFLOP/s per size and their maximum."""
    per_size = {n: matmul_gflops(n) for n in sizes}
    return {"gflops": max(per_size.values()), "per_size": per_size}


def steady_steps_per_second(runner: Callable[[int], float], steps: int, repeats: int) -> Dict:
    """Steps per second of `runner` after `WARMUP_CALLS` untimed calls: `repeats` timed runs of
    `steps` steps (rounded up to whole K-step calls); the median and the spread."""
    return interleaved_steps_per_second({"runner": runner}, steps, repeats)["runner"]


def interleaved_steps_per_second(runners: Dict[str, Callable[[int], float]], steps: int,
                                 repeats: int) -> Dict[str, Dict]:
    """`steady_steps_per_second` for several runners at once, in `repeats` rounds that time each
    runner in turn: the machine's drift (tens of percent over minutes on the 2-core CPU) then falls
    on all of them alike, so their ratios compare the same minutes."""
    calls = {name: max(1, -(-steps // runner.steps_per_call)) for name, runner in runners.items()}
    rates: Dict[str, list] = {name: [] for name in runners}
    for runner in runners.values():
        runner(WARMUP_CALLS)
    for _ in range(repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner(calls[name])
            rates[name].append(calls[name] * runner.steps_per_call / (time.perf_counter() - start))
    return {name: {"steps_per_second": statistics.median(rates[name]), "min": min(rates[name]),
                   "max": max(rates[name]), "timed_steps": calls[name] * runners[name].steps_per_call,
                   "repeats": repeats} for name in runners}


def first_epoch_seconds(setting: workloads.Setting, images: np.ndarray, labels: np.ndarray,
                        batch_size: int):
    """Wall time of a fresh model's first `fit` epoch over `images` (tracing and compiling included),
    through each side's public `fit`; returns (seconds, the trained engine Trainer or Keras model)."""
    if setting.side == "engine":
        trainer = workloads.engine_trainer(setting)
        start = time.perf_counter()
        trainer.fit(images, labels, epochs=1, batch_size=batch_size, seed=0)
        return time.perf_counter() - start, trainer
    model = workloads.keras_model(setting)
    start = time.perf_counter()
    model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
    return time.perf_counter() - start, model

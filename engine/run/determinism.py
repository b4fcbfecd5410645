"""Determinism: the same flags give the same numbers, run after run, bit for bit.

Two things can make two runs differ. Random numbers: initial weights (drawn from TensorFlow's
global seed, `layers.dense`), the shuffle (from (seed, epoch), `batches.epoch_batches`), and
anything else using Python's or NumPy's generators; `keras.utils.set_random_seed` seeds all
three. And the order of floating-point additions: a parallel reduction whose partial sums
meet in whatever order threads finish rounds differently from run to run (a + b) + c != a + (b + c).
`tf.config.experimental.enable_op_determinism` makes every op use a fixed order, or raise
if it has no deterministic kernel.

On the CPU the reference MLP pays almost nothing for it, so it is on by default there
(`deterministic=None`); on a GPU it can cost speed (atomics-based kernels are replaced), so
it is opt-in with `--deterministic`. Timings (`seconds`, `steps_per_second`) differ anyway.
"""

from typing import Optional

import tensorflow as tf


def configure(deterministic: Optional[bool], seed: int, device_kind: str) -> bool:
    """Seeds every generator and, when asked (None: on the CPU only), enables op determinism.

    Returns:
      Whether op determinism is on.
    """
    tf.keras.utils.set_random_seed(seed)  # Python's random, NumPy's global generator, TensorFlow's seed
    enabled = deterministic if deterministic is not None else device_kind == "cpu"
    if enabled:
        tf.config.experimental.enable_op_determinism()
    return enabled

"""Execution modes: the same Python step function run three ways.

- `eager`: plain Python. Every op is dispatched as the line runs: easy to debug with
  print and pdb, and slowest, because each of the step's ~40 ops pays Python and dispatch
  overhead.
- `graph`: `tf.function` traces the step once into a TensorFlow graph and then runs the
  graph from C++. Python runs only while tracing.
- `xla`: `tf.function(jit_compile=True)` also hands the graph to the XLA compiler, which
  fuses element-wise ops (bias add, relu, softmax) into few kernels.

The wrappers never change the math: tests check that all three give the same numbers.
"""

from typing import Callable, Optional, Sequence

import tensorflow as tf

from engine.config import MODES


def compile_step(
    step: Callable, mode: str, input_signature: Optional[Sequence[tf.TensorSpec]] = None
) -> Callable:
    """Wraps `step` for `mode`.

    With an `input_signature`, graph and XLA modes trace the step once, here, and return the
    traced `ConcreteFunction`. Calling it skips what a `tf.function` does on every call before
    running anything: bind the arguments to the signature and look the trace up in its cache.
    On the 2-core CPU, calling the concrete function makes a whole one-step training call 22-34%
    faster (`python -m bench.dispatch`); with a fixed signature one trace serves every call anyway.

    Args:
      step: a function of tensors, written for eager execution.
      mode: one of MODES.
      input_signature: the specs of `step`'s arguments. A batch axis of None lets the one
        trace serve full batches and the smaller last batch alike (graph mode); XLA still
        compiles once per distinct concrete shape: at most three per data set size (see
        `batches.execution_blocks`).

    Raises:
      ValueError: for an unknown mode.
    """
    if mode == "eager":
        return step
    if mode not in ("graph", "xla"):
        raise ValueError(f"Unknown execution mode {mode!r}: expected one of {', '.join(MODES)}")
    function = tf.function(step, input_signature=input_signature, jit_compile=mode == "xla")
    return function if input_signature is None else function.get_concrete_function()

"""A guided tour of the ideas under the engine, each one run and printed: `python -m engine.tour`.

Sections, in order (choose some with `--sections=tensors,graph`):

- tensors: what a tensor is: rank, shape, dtype, from a scalar to a batch of images.
- eager:   TensorFlow 2's default: every op runs as its line runs and returns a value.
- graph:   the same computation as a graph: a `tf.function`'s traced graph and its ops, and
           TensorFlow 1's build-then-run with `tf.compat.v1.Graph` and `Session`.
- models:  one network four ways: the engine's `Sequential` and functional `Model`, Keras's
           `Sequential` and Functional model; same summary, same parameters, same outputs.

Each section is a module with `run(print_fn)`, so tests call it in-process and read what it printed.
This package imports no TensorFlow itself: the command line checks its flags first.
"""

import importlib
from typing import Callable

SECTIONS = ("tensors", "eager", "graph", "models")


def run(section: str, print_fn: Callable[[str], None] = print) -> None:
    """Runs one section of the tour, printing through `print_fn`.

    Raises:
      ValueError: for a name not in SECTIONS.
    """
    if section not in SECTIONS:
        raise ValueError(f"unknown tour section {section!r}: expected one of {', '.join(SECTIONS)}")
    print_fn(f"\n=== {section} ===")
    importlib.import_module(f"engine.tour.{section}").run(print_fn)

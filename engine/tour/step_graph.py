"""The training step's computation graph as a picture: forward, loss, gradients, update.

`draw_training_step` traces `engine.training.train_step` for a model with `tf.function`
(nothing is run) and writes

- OUT/training_step.dot, .svg, .png: the graph grouped by name scope (engine/tour/graph_groups.py),
  one box per layer forward and backward, drawn by Graphviz's `dot`;
- OUT/tensorboard/: the full, ungrouped graph, for `tensorboard --logdir OUT/tensorboard`
  (Graphs tab), where each name scope is a box that opens to show its ops.

`python -m engine.tour.graph_picture` draws the reference MLP's step from the command line.
"""

import functools
import os
import shutil
import subprocess
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from engine import losses, optimizers
from engine.errors import ConfigError
from engine.metrics import Mean, SparseCategoricalAccuracy
from engine.run import directories, writes
from engine.tour import graph_groups
from engine.training import train_step


def training_step_function(model, input_shape: Sequence[int], loss_fn: Callable = losses.sparse_categorical_crossentropy,
                           optimizer: Optional[tf.Module] = None) -> tf.types.experimental.ConcreteFunction:
    """The graph `Trainer` runs for one step of `model` on images of `input_shape` (no batch axis)."""
    if not model.built:
        model.build((None,) + tuple(input_shape))
    optimizer = optimizer or optimizers.SGD(0.01)
    optimizer.build(model.trainable_variables)
    step = functools.partial(train_step, model, loss_fn, optimizer, Mean("loss"), [SparseCategoricalAccuracy("accuracy")])
    return tf.function(step).get_concrete_function(
        tf.TensorSpec((None,) + tuple(input_shape), tf.float32, name="images"),
        tf.TensorSpec((None,), tf.int32, name="labels"))


def describe(layer: tf.Module) -> str:
    """'Dense(128, relu)', 'Flatten', ...: what a layer box in the picture says besides its name."""
    if hasattr(layer, "units"):
        return f"{type(layer).__name__}({layer.units}, {layer.activation.__name__})"
    return type(layer).__name__


def can_draw() -> bool:
    """Whether Graphviz's `dot` is on PATH, so pictures can be drawn (the DOT file needs no Graphviz)."""
    return shutil.which("dot") is not None


def draw_training_step(model, input_shape: Sequence[int], out_dir: str, formats: Sequence[str] = ("svg", "png"),
                       loss_fn: Callable = losses.sparse_categorical_crossentropy,
                       optimizer: Optional[tf.Module] = None) -> Dict[str, str]:
    """Writes the grouped picture (DOT, and each of `formats` via Graphviz) and the TensorBoard graph.

    Args:
      model: a `Sequential` or functional `Model`; built here for `input_shape` if it is not.
      input_shape: one example's shape, e.g. (28, 28).
      out_dir: where training_step.dot, training_step.<format> and tensorboard/ go.
      formats: Graphviz output formats; () writes only the DOT file and the TensorBoard graph.
      loss_fn, optimizer: what the step uses (default: sparse cross-entropy, SGD(0.01)).

    Returns:
      The paths written, by kind: 'dot', each format, 'tensorboard' (the event file's directory).

    Raises:
      ConfigError: when Graphviz's `dot` is not installed (the DOT file and the TensorBoard
        graph are written first).
    """
    concrete = training_step_function(model, input_shape, loss_fn, optimizer)
    directories.make_dirs(out_dir, "--out")
    paths = {"dot": os.path.join(out_dir, "training_step.dot"), "tensorboard": os.path.join(out_dir, "tensorboard")}
    directories.check_subdirectory(paths["tensorboard"])  # TensorFlow's event writer would follow a link
    grouped = graph_groups.group_graph(concrete.graph.as_graph_def())
    descriptions = {layer.name: describe(layer) for layer in model.layers}
    params = f"{model.count_params():,} parameters"
    writes.write_text(paths["dot"], graph_groups.to_dot(grouped, descriptions,
                                                        f"One training step of '{model.name}' ({params})"))
    writer = tf.summary.create_file_writer(paths["tensorboard"])
    with writer.as_default():
        tf.summary.graph(concrete.graph)
    writer.close()
    dot = shutil.which("dot")
    if formats and not can_draw():
        raise ConfigError(f"Graphviz's `dot` is not installed, so no {'/'.join(formats)} was drawn: "
                          f"apt-get install graphviz (wrote {paths['dot']} and {paths['tensorboard']})")
    for kind in formats:
        paths[kind] = os.path.join(out_dir, f"training_step.{kind}")
        # to stdout, then written here: `dot -o` would write through a link at the destination
        drawn = subprocess.run([dot, f"-T{kind}", paths["dot"]], check=True, capture_output=True).stdout
        writes.write_bytes(paths[kind], drawn)
    return paths

"""A picture of the training step's computation graph, from the command line.

    python -m engine.tour.graph_picture --out runs/graph [--hidden=256,128]

draws the MLP's training step (engine/tour/step_graph.py says what is written: the grouped
picture in DOT, SVG and PNG, and the full graph for TensorBoard). The flags are checked, and
the model's size against the memory there is, before TensorFlow loads.
"""

import sys
from typing import Sequence

from absl import flags

from engine.run import cli, program

PROGRAM = "python -m engine.tour.graph_picture"
FLAGS = cli.new_flag_values()
flags.DEFINE_string("out", "runs/graph", "Directory for training_step.{dot,svg,png} and tensorboard/.", flag_values=FLAGS)
cli.define_hidden(FLAGS, "256,128", "Hidden layer sizes of the MLP drawn, comma-separated.")
program.start(PROGRAM, FLAGS, __name__)


def draw() -> int:
    """The picture the parsed FLAGS describe, of a model checked to fit in memory; returns 0."""
    from engine import startup
    from engine.run.config import TrainConfig
    from engine.run.model_size import check_model_fits

    check_model_fits(TrainConfig(hidden=tuple(FLAGS.hidden), batch_size=1), (28, 28), 10)  # tracing builds it
    startup.import_tensorflow()
    from engine.tour import step_graph
    from layers import mlp

    paths = step_graph.draw_training_step(mlp(FLAGS.hidden, 10), (28, 28), FLAGS.out)
    for kind, path in paths.items():
        print(f"Wrote {kind}: {path}")
    return 0


def main(argv: Sequence[str]) -> int:
    """`python -m engine.tour.graph_picture --out DIR [--hidden=256,128]`: the reference MLP's step; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, draw, outputs=("out",))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

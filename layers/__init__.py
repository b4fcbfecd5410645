"""What a model is made of: `Flatten`, `Dense`, `Activation`, the merge layers `Add` and
`Concatenate`, and two containers: `Sequential` (a stack) and `Model` (any graph, wired with
`Input`), which are layers themselves and nest.

Each is a `tf.Module`, so its variables are tracked, saved and collected without any
framework machinery beyond TensorFlow's own. The layers share a small base, `Layer`
(layers/layer.py): naming, build on first call, shape checks, wiring, so each is its math and,
beside it, its backward rule; the containers share theirs (layers/container.py).
"""

import engine  # noqa: F401  (first: its start-up hook keeps TensorFlow's import quiet, engine/startup.py)
from layers.activation import Activation
from layers.dense import Dense
from layers.flatten import Flatten
from layers.functional import Input
from layers.layer import Layer
from layers.merge import Add, Concatenate
from layers.mlp import mlp
from layers.model import Model
from layers.sequential import Sequential

__all__ = ["Activation", "Add", "Concatenate", "Dense", "Flatten", "Input", "Layer", "Model", "Sequential", "mlp"]

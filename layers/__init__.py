"""What a model is made of: `Flatten`, `Dense`, and the `Sequential` container.

Each is a `tf.Module`, so its variables are tracked, saved and collected without any
framework machinery beyond TensorFlow's own.
"""

from layers.dense import Dense
from layers.flatten import Flatten
from layers.mlp import mlp
from layers.sequential import Sequential

__all__ = ["Dense", "Flatten", "Sequential", "mlp"]

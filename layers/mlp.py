"""The multilayer perceptron builder: Flatten, then Dense layers, then the classifier."""

from typing import Optional, Sequence

from layers.dense import Dense
from layers.flatten import Flatten
from layers.sequential import Sequential


def mlp(
    hidden_sizes: Sequence[int],
    num_classes: int,
    activation: str = "relu",
    output_activation: Optional[str] = "softmax",
    name: Optional[str] = None,
    dtype: str = "float32",
) -> Sequential:
    """Flatten -> Dense(h, activation) for each h in `hidden_sizes` -> Dense(num_classes, output_activation).

    `mlp((256, 128), 10)` is the reference MNIST model. `output_activation=None` gives
    logits, for a loss with `from_logits=True`. Variables are created on the first call or
    `build`; call `tf.random.set_seed` first (or seed the layers) for reproducible weights.
    `dtype` is every layer's (float64 for a numerical gradient check).
    """
    if any(not isinstance(h, int) or h <= 0 for h in hidden_sizes):
        raise ValueError(f"mlp hidden sizes must be positive integers, got {list(hidden_sizes)}")
    model = Sequential(name=name)
    model.add(Flatten(dtype=dtype))
    for units in hidden_sizes:
        model.add(Dense(units, activation=activation, dtype=dtype))
    model.add(Dense(num_classes, activation=output_activation, dtype=dtype))
    return model

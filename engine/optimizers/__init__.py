"""The optimizers, by the names a user types: `get("adam", learning_rate=1e-3)`.

Each is a subclass of `Optimizer` (engine/optimizers/optimizer.py, which says what they share
and the protocol the rest of the engine relies on) that writes only its slots and its update
rule, Keras 3's, with Keras's argument names and defaults. Adding one is a class in its own
file and a line in `OPTIMIZERS`.
"""

import inspect
from typing import Dict, Tuple, Type, Union

from engine.optimizers.adam import Adam
from engine.optimizers.adamw import AdamW
from engine.optimizers.optimizer import Optimizer
from engine.optimizers.rmsprop import RMSprop
from engine.optimizers.sgd import SGD

OPTIMIZERS: Dict[str, Type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def arguments_of(kind: Union[str, Type[Optimizer]]) -> Tuple[str, ...]:
    """The arguments an optimizer takes, by Keras's names: `arguments_of("sgd")` is
    ("learning_rate", "momentum", "nesterov", "weight_decay", "name")."""
    kind = OPTIMIZERS[kind.lower()] if isinstance(kind, str) else kind
    return tuple(name for name in inspect.signature(kind.__init__).parameters if name != "self")


def get(identifier: Union[str, Optimizer], **arguments) -> Optimizer:
    """The optimizer named `identifier` (case-insensitive), made with `arguments`; an `Optimizer`
    is returned as it is.

    Raises:
      ValueError: for a name not in OPTIMIZERS, or an argument that optimizer does not take.
    """
    if isinstance(identifier, Optimizer) and not arguments:
        return identifier
    kind = OPTIMIZERS.get(str(identifier).lower())
    if kind is None:
        raise ValueError(f"unknown optimizer {identifier!r}: expected one of {', '.join(OPTIMIZERS)}")
    accepted = arguments_of(kind)
    unknown = sorted(set(arguments) - set(accepted))
    if unknown:
        raise ValueError(f"{kind.__name__} takes no argument {', '.join(unknown)}: its arguments are "
                         f"{', '.join(accepted)}")
    return kind(**arguments)


__all__ = ["Optimizer", "OPTIMIZERS", "arguments_of", "get", *(kind.__name__ for kind in OPTIMIZERS.values())]

"""Whether a step needs AutoGraph: only when it runs code the engine did not write.

`tf.function` runs AutoGraph over the traced function and, recursively, over every Python
function it calls, so that a Python `if` or `for` over a tensor becomes `tf.cond` or
`tf.while_loop`. The rewrite is paid once per function per process: the reference model's step
calls 34 of the engine's functions, and rewriting them took 1.4-2.0 s of its first epoch on a
2-core AMD EPYC, against 0.4-0.9 s for the whole trace without it (bench/RESULTS.md, time to
accuracy). The engine's own code never branches on a tensor, so it needs none of that: its
step is traced as written. Code from anywhere else -- a user's layer, loss, metric, activation,
initializer or optimizer, even one that subclasses the engine's -- keeps AutoGraph, as Keras
keeps it for user code, so a Python `if` on a tensor there works as it does in Keras.

The check is structural: it walks the objects the step holds (the model and its layers, the
optimizer, the metrics, the loss) and every callable attribute in them, and asks where each
callable's code is defined.
"""

import functools
import types
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

# Packages whose code runs in a trace as written. TensorFlow and Keras are on AutoGraph's own
# do-not-convert list; the engine and its layers are written for it (tests/test_tracing.py).
TRACED_AS_WRITTEN = ("engine", "layers", "tensorflow", "keras", "numpy", "functools", "builtins")

_DATA = (str, bytes, int, float, complex, bool, type(None), np.ndarray, np.generic, tf.Tensor, tf.Variable,
         tf.TensorSpec, tf.DType)


def user_code(*parts: object) -> Optional[str]:
    """The first callable among `parts` (searched through their attributes) defined outside the
    engine: its module and name, e.g. "my_model.Gate.call" -- or None when all of it is the engine's."""
    seen = set()
    pending = list(parts)
    while pending:
        part = pending.pop()
        if isinstance(part, _DATA) or id(part) in seen:
            continue
        seen.add(id(part))
        found = _foreign(part)
        if found:
            return found
        pending.extend(_held(part))
    return None


def _foreign(part: object) -> Optional[str]:
    """`part`'s own code, if it is defined outside TRACED_AS_WRITTEN (a function, or an object's class)."""
    if isinstance(part, functools.partial):
        return None  # its function and arguments are searched as what it holds
    if isinstance(part, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
        code = getattr(part, "__func__", part)
        return None if _ours(code.__module__) else f"{code.__module__}.{code.__qualname__}"
    for cls in type(part).__mro__:  # a subclass defined elsewhere overrides what the engine wrote
        if _ours(cls.__module__):
            return None
        if cls is not object:
            return f"{cls.__module__}.{cls.__qualname__}"
    return None


def _held(part: object) -> Iterable[object]:
    """What `part` refers to that the step may call: attributes, items, a partial's function and arguments."""
    if isinstance(part, functools.partial):
        return [part.func, *part.args, *part.keywords.values()]
    if isinstance(part, dict):
        return list(part.values())
    if isinstance(part, (list, tuple, set, frozenset)):
        return list(part)
    if isinstance(part, types.MethodType):
        return [part.__self__]
    if isinstance(part, (types.FunctionType, types.BuiltinFunctionType, type)) or not _searched(part):
        return []
    return list(getattr(part, "__dict__", {}).values())


def _searched(part: object) -> bool:
    """Whether `part`'s attributes are searched: only the engine's objects'. TensorFlow's own
    (a name scope, a strategy) are never rewritten, whatever they hold."""
    return type(part).__module__.split(".")[0] in ("engine", "layers")


def _ours(module: Optional[str]) -> bool:
    return bool(module) and module.split(".")[0] in TRACED_AS_WRITTEN

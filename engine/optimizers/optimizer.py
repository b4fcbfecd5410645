"""What every optimizer shares, so that each one is only its slots and its update rule.

An optimizer turns gradients into new weights. Most keep some state per weight: SGD with
momentum a velocity, Adam two moment estimates. That state is a *slot*: one variable per trained
variable, of its shape and dtype, starting at zero. This base owns everything around the rule:

    apply_gradients(grads_and_vars):
        drop the pairs whose gradient is None; check every shape (before any update)
        make the missing slots (once per variable, outside any trace: `build`)
        w <- w - lr * weight_decay * w           for every w, when weight_decay is set
        u, slots <- update_rule(g, w, slots, lr, t)   for every (g, w), t = iterations + 1
        w <- w - u
        iterations <- iterations + 1

Weight decay is Keras 3's decoupled one (Loshchilov & Hutter): it shrinks the weights directly,
apart from the gradient, so an adaptive rule does not rescale it. A subclass writes:

- `slot_names`: the attributes holding its slot lists (e.g. `("velocities",)`), and
  `slots_used()` when a setting leaves some empty (SGD without momentum keeps none);
- `update_rule`: the update u (w <- w - u) and the new slots, as a pure function of the
  gradient, the weight and the slots, its docstring the formula. (Subtracting u is how Keras
  applies every rule here, `assign_sub`: the same rounding, and the step's graph shows it.)

Its constructor's arguments are Keras's names, each kept as an attribute of the same name:
`get_config` reads them back, so the settings are written down once.

The protocol the rings rely on (engine/run, engine/distribute, engine/compare), and nothing else:

- `learning_rate`: a float32 `tf.Variable`; assign it between steps to change the rate without
  retracing (a resumed job sets it from its flags; TensorBoard logs it).
- `iterations`: an int64 `tf.Variable`, the number of `apply_gradients` calls. A replicated step
  updates every replica's copies by updating "it" (`engine/distribute/replicated.py`).
- `build(variables)`: makes the slots up front, before a trace or a checkpoint restore.
- the checkpoint holds `learning_rate`, `iterations` and each slot list under its attribute
  name, one entry per variable in the order first seen (`velocities/0`, `velocities/1`, ...).
- `get_config()`: the constructor's arguments by Keras's names; `type(self).__name__` is Keras's
  class name. A checkpoint records both and refuses another optimizer (engine/run/checkpoints.py).
"""

import inspect
import numbers
from typing import Dict, Iterable, Optional, Tuple, Union

import tensorflow as tf

Number = Union[float, tf.Tensor]


def as_dtype(value: Number, dtype: tf.DType) -> tf.Tensor:
    """A hyperparameter in the weight's dtype, converted directly: 0.9 becomes the nearest float64 to
    0.9 for a float64 weight (a tensor is cast).

    `tf.cast(0.9, tf.float64)` instead goes through float32 (a Python float becomes a float32 tensor
    first): 0.8999999761581421. Keras's rules use one or the other term by term (`tf.cast` for
    Adam's betas in the bias correction, SGD's momentum and the weight decay; a plain Python number
    elsewhere), and each rule here does as Keras's does, so float64 runs agree with Keras's to 1e-12
    (float32 runs do not see the difference).
    """
    return tf.cast(value, dtype) if tf.is_tensor(value) else tf.constant(value, dtype)


class Optimizer(tf.Module):
    """The base of every optimizer: learning rate, step counter, slots, weight decay, and the loop
    over (gradient, variable) pairs. See the module docstring for what a subclass writes."""

    slot_names: Tuple[str, ...] = ()

    def __init__(self, learning_rate: Number, weight_decay: Optional[float] = None, name: Optional[str] = None):
        super().__init__(name=name)
        if not float(learning_rate) > 0:
            raise ValueError(f"{type(self).__name__} learning_rate must be > 0, got {learning_rate}")
        if weight_decay is not None:
            self.check_range("weight_decay", weight_decay, 0.0, float("inf"))
        self.learning_rate = tf.Variable(tf.cast(learning_rate, tf.float32), trainable=False, name="learning_rate")
        self.weight_decay = weight_decay
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        for slots in self.slot_names:
            setattr(self, slots, [])
        self._position: dict = {}  # variable ref -> its index in every slot list

    def check_range(self, argument: str, value: Number, low: float, high: float) -> None:
        """Refuses `value` unless low <= value < high (a tensor is read; a bool is no number)."""
        number = float(value) if tf.is_tensor(value) else value
        if not isinstance(number, numbers.Real) or isinstance(number, bool) or not low <= number < high:
            raise ValueError(f"{type(self).__name__} {argument} must be a float in [{low:g}, {high:g}), "
                             f"got {value!r}")

    def slots_used(self) -> Tuple[str, ...]:
        """The slot lists this configuration fills; the others stay empty."""
        return self.slot_names

    def update_rule(self, gradient: tf.Tensor, variable: tf.Tensor, slots: Dict[str, tf.Tensor],
                    learning_rate: tf.Tensor, t: tf.Tensor) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        """The update u to subtract from `variable` and the new value of each slot in `slots_used()`,
        from the gradient (in the variable's dtype), the learning rate (same dtype) and the step
        number t (int64, from 1).

        Pure: it reads `variable` and the slots and returns values; the base assigns them.
        """
        raise NotImplementedError(f"{type(self).__name__} must define update_rule")

    def build(self, variables: Iterable[tf.Variable]) -> None:
        """Creates zero slots for each variable not seen before.

        `apply_gradients` calls it; calling it up front (as `Trainer.build` does) creates the slots
        eagerly, outside any `tf.function` trace, and before a checkpoint is restored into them.
        """
        for variable in variables:
            if variable.ref() in self._position:
                continue
            self._position[variable.ref()] = len(self._position)
            for slots in self.slots_used():
                with tf.init_scope():  # slots are state, created once, never inside a graph
                    getattr(self, slots).append(tf.Variable(
                        tf.zeros(variable.shape, variable.dtype), trainable=False,
                        name=f"{slots}_{len(getattr(self, slots))}"))

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[tf.Tensor], tf.Variable]]) -> None:
        """Applies one update to each variable; `None` gradients are skipped (as Keras does).

        Raises:
          ValueError: when a gradient's shape does not match its variable's.
        """
        pairs = [(grad, var) for grad, var in grads_and_vars if grad is not None]
        for grad, var in pairs:  # all checked before any is applied: no half-done update
            if grad.shape != var.shape:
                raise ValueError(f"{type(self).__name__} got a gradient of shape {grad.shape} for variable "
                                 f"'{var.name}' of shape {var.shape}")
        self.build([var for _, var in pairs])
        if self.weight_decay is not None:
            for _, var in pairs:
                var.assign_sub(var * tf.cast(self.weight_decay, var.dtype) * tf.cast(self.learning_rate, var.dtype))
        t = self.iterations + 1
        for grad, var in pairs:
            index = self._position[var.ref()]
            slots = {name: getattr(self, name)[index] for name in self.slots_used()}
            update, new_slots = self.update_rule(tf.cast(grad, var.dtype), var, dict(slots),
                                                 tf.cast(self.learning_rate, var.dtype), t)
            for name, value in new_slots.items():
                slots[name].assign(value)
            var.assign_sub(update)
        self.iterations.assign_add(1)

    def get_config(self) -> dict:
        """The constructor's arguments by name (the learning rate's current value), as Keras's are."""
        arguments = [name for name in inspect.signature(type(self).__init__).parameters if name not in ("self", "name")]
        config = {name: getattr(self, name) for name in arguments}
        # A variable (a MirroredVariable too, under a distribution strategy) is read as its value.
        return {name: float(value.numpy()) if hasattr(value, "numpy") else value for name, value in config.items()}

"""Stochastic gradient descent, with momentum and Nesterov momentum, written out.

The update rule is Keras 3's `keras.optimizers.SGD`, line for line (its `update_step`):

    plain:     w <- w - lr * g
    momentum:  v <- momentum * v - lr * g
               w <- w + v
    nesterov:  v <- momentum * v - lr * g
               w <- w + momentum * v - lr * g

`v` is the velocity, one slot per variable, starting at zero. With momentum, a gradient
that keeps its sign accumulates speed (up to lr / (1 - momentum) times the gradient),
while one that flips sign cancels out. Nesterov evaluates the step "ahead": it applies the
new velocity once more, which damps the overshoot of plain momentum.

Keras's `weight_decay`, `clipnorm`, `clipvalue`, `use_ema` and gradient accumulation are
left out on purpose: each is a separate transformation of the gradient, not part of SGD's rule.
"""

import numbers
from typing import Iterable, Optional, Tuple

import tensorflow as tf


class SGD(tf.Module):
    """The SGD optimizer; owns one velocity slot per variable when momentum > 0.

    `momentum` must be a Python number in [0, 1); unlike Keras, 1 is refused on purpose: the
    velocity would then never decay, summing every past gradient at full weight.

    Example:
      >>> w = tf.Variable([1.0])
      >>> SGD(learning_rate=0.1).apply_gradients([(tf.constant([2.0]), w)])
      >>> w.numpy()   # 1 - 0.1 * 2
      array([0.8], dtype=float32)
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        if learning_rate <= 0:
            raise ValueError(f"SGD learning_rate must be > 0, got {learning_rate}")
        # A Python number, as Keras requires (it refuses a tensor too): it scales velocities of any dtype.
        if not isinstance(momentum, numbers.Real) or isinstance(momentum, bool) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD momentum must be a float in [0, 1), got {momentum!r}")
        self.learning_rate = tf.Variable(learning_rate, trainable=False, name="learning_rate")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.velocities: list = []  # slots, created on the first apply_gradients
        self._slot_for: dict = {}  # variable ref -> index into self.velocities

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[tf.Tensor], tf.Variable]]) -> None:
        """Applies one update to each variable; `None` gradients are skipped (as Keras does).

        Raises:
          ValueError: when a gradient's shape does not match its variable's.
        """
        pairs = [(grad, var) for grad, var in grads_and_vars if grad is not None]
        for grad, var in pairs:  # all checked before any is applied: no half-done update
            if grad.shape != var.shape:
                raise ValueError(
                    f"SGD got a gradient of shape {grad.shape} for variable "
                    f"'{var.name}' of shape {var.shape}"
                )
        for grad, var in pairs:
            self._update(tf.cast(grad, var.dtype), var)
        self.iterations.assign_add(1)

    def _update(self, g: tf.Tensor, w: tf.Variable) -> None:
        lr = tf.cast(self.learning_rate, w.dtype)
        if self.momentum == 0.0:
            w.assign_sub(g * lr)
            return
        v = self._velocity(w)
        v.assign(v * self.momentum - g * lr)
        if self.nesterov:
            w.assign_add(v * self.momentum - g * lr)
        else:
            w.assign_add(v)

    def build(self, variables: Iterable[tf.Variable]) -> None:
        """Creates a zero velocity slot for each variable not seen before.

        Called by `apply_gradients`; calling it up front (as the training loop does) creates
        the slots eagerly, outside any `tf.function` trace.
        """
        if self.momentum == 0.0:
            return
        for w in variables:
            if w.ref() not in self._slot_for:
                with tf.init_scope():  # slots are state, created once, never inside a graph
                    slot = tf.Variable(
                        tf.zeros(w.shape, w.dtype), trainable=False,
                        name=f"velocity_{len(self.velocities)}",
                    )
                self._slot_for[w.ref()] = len(self.velocities)
                self.velocities.append(slot)

    def _velocity(self, w: tf.Variable) -> tf.Variable:
        self.build([w])
        return self.velocities[self._slot_for[w.ref()]]

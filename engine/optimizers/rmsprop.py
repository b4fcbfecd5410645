"""RMSprop: each step divided by a running root mean square of the gradient, written out.

Keras 3's `keras.optimizers.RMSprop` (Hinton's lecture 6e), its `update_step` line for line:

    v <- rho v + (1 - rho) g^2                 the mean squared gradient, decayed
    centered:   a <- rho a + (1 - rho) g       the mean gradient, decayed
                d = v - a^2 + epsilon          an estimate of the gradient's variance
    otherwise:  d = v + epsilon
    step = lr g / sqrt(d)
    momentum > 0:  p <- momentum p + step,  w <- w - p
    otherwise:     w <- w - step

Unlike Adam there is no bias correction, and epsilon is inside the square root. `centered`
divides by the gradient's spread rather than its size, so a gradient that is consistently
large still gets a large step. `momentum` accumulates the scaled steps as SGD's velocity does.
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf

from engine.optimizers.optimizer import Number, Optimizer, as_dtype


class RMSprop(Optimizer):
    """The RMSprop optimizer: slots `velocities`, and `momentums` (momentum > 0) and
    `average_gradients` (centered).

    Example:
      >>> w = tf.Variable([1.0])
      >>> RMSprop(learning_rate=0.1).apply_gradients([(tf.constant([2.0]), w)])
      >>> w.numpy()   # 1 - 0.1 * 2 / sqrt(0.1 * 4 + 1e-7)
      array([0.6837723], dtype=float32)
    """

    slot_names = ("velocities", "momentums", "average_gradients")

    def __init__(self, learning_rate: Number = 0.001, rho: Number = 0.9, momentum: Number = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay: Optional[float] = None,
                 name: Optional[str] = None):
        super().__init__(learning_rate, weight_decay, name)
        self.check_range("rho", rho, 0.0, 1.0)
        self.check_range("momentum", momentum, 0.0, 1.0)
        self.check_range("epsilon", epsilon, 0.0, float("inf"))
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def slots_used(self) -> Tuple[str, ...]:
        return (("velocities",) + (("momentums",) if float(self.momentum) > 0 else ())
                + (("average_gradients",) if self.centered else ()))

    def update_rule(self, g: tf.Tensor, w: tf.Tensor, slots: Dict[str, tf.Tensor], lr: tf.Tensor,
                    t: tf.Tensor) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        """v <- rho v + (1 - rho) g^2; [a <- rho a + (1 - rho) g]; s = lr g / sqrt(v [- a^2] + eps);
        w <- w - s, or with momentum: p <- momentum p + s, w <- w - p."""
        rho = as_dtype(self.rho, w.dtype)
        v = rho * slots["velocities"] + as_dtype(1 - self.rho, w.dtype) * tf.square(g)
        new_slots = {"velocities": v}
        if self.centered:
            new_slots["average_gradients"] = a = rho * slots["average_gradients"] + as_dtype(1 - self.rho, w.dtype) * g
            denominator = v - tf.square(a) + as_dtype(self.epsilon, w.dtype)
        else:
            denominator = v + as_dtype(self.epsilon, w.dtype)
        increment = lr * g / tf.sqrt(denominator)
        if "momentums" not in slots:
            return increment, new_slots
        new_slots["momentums"] = p = as_dtype(self.momentum, w.dtype) * slots["momentums"] + increment
        return p, new_slots

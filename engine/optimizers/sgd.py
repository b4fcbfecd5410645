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

Keras's `clipnorm`, `clipvalue`, `use_ema` and gradient accumulation are left out on purpose:
each is a separate transformation of the gradient, not part of SGD's rule. `weight_decay` is
the base's (engine/optimizers/optimizer.py), as in Keras.
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf

from engine.optimizers.optimizer import Number, Optimizer


class SGD(Optimizer):
    """The SGD optimizer; owns one velocity slot per variable when momentum > 0.

    `momentum` is a float or a scalar tensor (cast to each weight's dtype, as the learning rate
    is) in [0, 1); unlike Keras, 1 is refused on purpose: the velocity would then never decay,
    summing every past gradient at full weight.

    Example:
      >>> w = tf.Variable([1.0])
      >>> SGD(learning_rate=0.1).apply_gradients([(tf.constant([2.0]), w)])
      >>> w.numpy()   # 1 - 0.1 * 2
      array([0.8], dtype=float32)
    """

    slot_names = ("velocities",)

    def __init__(self, learning_rate: Number = 0.01, momentum: Number = 0.0, nesterov: bool = False,
                 weight_decay: Optional[float] = None, name: Optional[str] = None):
        super().__init__(learning_rate, weight_decay, name)
        self.check_range("momentum", momentum, 0.0, 1.0)
        self.momentum, self.nesterov = momentum, nesterov

    def slots_used(self) -> Tuple[str, ...]:
        return self.slot_names if float(self.momentum) > 0 else ()

    def update_rule(self, g: tf.Tensor, w: tf.Tensor, slots: Dict[str, tf.Tensor], lr: tf.Tensor,
                    t: tf.Tensor) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        """w <- w - lr g; with momentum m: v <- m v - lr g, then w <- w + v (Nesterov: w + m v - lr g).

        Returned as the update u, w <- w - u (so u = -v: subtracting -v adds v exactly).
        """
        if not slots:
            return g * lr, {}
        m = tf.cast(self.momentum, w.dtype)  # as Keras: see as_dtype
        v = slots["velocities"] * m - g * lr
        return (-(v * m - g * lr) if self.nesterov else -v), {"velocities": v}

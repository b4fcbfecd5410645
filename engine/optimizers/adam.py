"""Adam: momentum on the gradient, divided by a running size of the gradient, written out.

Keras 3's `keras.optimizers.Adam` (Kingma & Ba, 2014), its `update_step` line for line:

    m <- m + (1 - beta_1) (g - m)              first moment: the mean gradient, decayed
    v <- v + (1 - beta_2) (g^2 - v)            second moment: the mean squared gradient
    v_hat <- max(v_hat, v)                     only with amsgrad; then v_hat stands for v below
    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    w <- w - alpha * m / (sqrt(v) + epsilon)

m and v start at zero, so early on they are biased towards it: after t steps of a constant
gradient, m = (1 - beta_1^t) g. Dividing by those factors (folded into alpha) corrects that.
Every weight then moves by about lr, whatever its gradient's scale: m / sqrt(v) ~ g / |g|.
`epsilon` is the paper's "epsilon hat": it is added to sqrt(v) after the bias correction was
folded into alpha, not to a corrected sqrt(v_hat). AMSGrad (Reddi et al., 2018) keeps the
largest v seen, so a weight's step size never grows back after a burst of large gradients.
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf

from engine.optimizers.optimizer import Number, Optimizer, as_dtype


class Adam(Optimizer):
    """The Adam optimizer: slots `momentums`, `velocities` and, with amsgrad, `velocity_hats`.

    Example:
      >>> w = tf.Variable([1.0])
      >>> Adam(learning_rate=0.1).apply_gradients([(tf.constant([2.0]), w)])
      >>> w.numpy()   # the first step moves by about lr: 1 - 0.1 * 2 / (2 + 1e-7)
      array([0.9], dtype=float32)
    """

    slot_names = ("momentums", "velocities", "velocity_hats")

    def __init__(self, learning_rate: Number = 0.001, beta_1: Number = 0.9, beta_2: Number = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, weight_decay: Optional[float] = None,
                 name: Optional[str] = None):
        super().__init__(learning_rate, weight_decay, name)
        self.check_range("beta_1", beta_1, 0.0, 1.0)
        self.check_range("beta_2", beta_2, 0.0, 1.0)
        self.check_range("epsilon", epsilon, 0.0, float("inf"))
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def slots_used(self) -> Tuple[str, ...]:
        return self.slot_names if self.amsgrad else ("momentums", "velocities")

    def update_rule(self, g: tf.Tensor, w: tf.Tensor, slots: Dict[str, tf.Tensor], lr: tf.Tensor,
                    t: tf.Tensor) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        """m <- m + (1 - b1)(g - m); v <- v + (1 - b2)(g^2 - v); [v_hat <- max(v_hat, v)];
        w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)."""
        beta_1, beta_2 = tf.cast(self.beta_1, w.dtype), tf.cast(self.beta_2, w.dtype)  # as Keras: see as_dtype
        t = tf.cast(t, w.dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, t)) / (1 - tf.pow(beta_1, t))
        m = slots["momentums"] + (g - slots["momentums"]) * as_dtype(1 - self.beta_1, w.dtype)
        v = slots["velocities"] + (tf.square(g) - slots["velocities"]) * as_dtype(1 - self.beta_2, w.dtype)
        new_slots = {"momentums": m, "velocities": v}
        if self.amsgrad:
            new_slots["velocity_hats"] = v = tf.maximum(slots["velocity_hats"], v)
        return m * alpha / (tf.sqrt(v) + as_dtype(self.epsilon, w.dtype)), new_slots

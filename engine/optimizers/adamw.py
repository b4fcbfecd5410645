"""AdamW: Adam with decoupled weight decay on by default (Loshchilov & Hutter, 2019).

Keras 3's `keras.optimizers.AdamW` is `Adam` with `weight_decay=0.004` and refusing None; the
decay itself is the base's, before Adam's step (engine/optimizers/optimizer.py):

    w <- w - lr * weight_decay * w
    then Adam's rule (engine/optimizers/adam.py)

Decoupled means the decay does not go through the gradient: an L2 penalty's gradient would be
divided by sqrt(v) like any other, so weights with large gradients would barely decay. Here
every weight shrinks by the same factor, 1 - lr * weight_decay, each step.
"""

from typing import Optional

from engine.optimizers.adam import Adam
from engine.optimizers.optimizer import Number


class AdamW(Adam):
    """Adam with `weight_decay` (default 0.004) applied to the weights directly.

    Raises:
      ValueError: for `weight_decay=None` (use `Adam` for no decay), as Keras does.
    """

    def __init__(self, learning_rate: Number = 0.001, weight_decay: float = 0.004, beta_1: Number = 0.9,
                 beta_2: Number = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, name: Optional[str] = None):
        if weight_decay is None:
            raise ValueError("AdamW weight_decay must be a float >= 0, got None (Adam is AdamW without decay)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name)

"""The reference workload in JAX/Flax, as the Flax MNIST example writes it: a linen MLP, optax SGD,
one pure `train_step`; compiled three ways (`Runner`'s `mode`):

    step    jax.jit(train_step), one call per batch
    scan    jax.jit(lax.scan(train_step)) over blocks of K batches, one call per K steps
    epoch   the same scan over the whole epoch's batches: one call per epoch

The data stay on the device as two arrays; each step gathers its batch by index, as the engine
does. The running loss sum and correct count ride in the carried state, so nothing is read back
before the epoch ends.
"""

from typing import Sequence, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

LEARNING_RATE = 0.01


def versions() -> dict:
    return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "devices": [str(device) for device in jax.devices()]}


class MLP(nn.Module):
    """Flatten -> Dense(256, relu) -> Dense(128, relu) -> Dense(10); the softmax is in the loss."""

    hidden: Sequence[int] = (256, 128)
    classes: int = 10

    @nn.compact
    def __call__(self, images):
        x = images.reshape((images.shape[0], -1))  # [B, 784]
        for units in self.hidden:
            x = nn.relu(nn.Dense(units)(x))  # [B, units]
        return nn.Dense(self.classes)(x)  # [B, 10] logits


def make_train_step(model: MLP, tx: optax.GradientTransformation):
    """state = (params, opt_state, loss_sum, correct_sum); one SGD step on the batch `index` picks."""
    def train_step(state, images, labels, index):
        params, opt_state, loss_sum, correct = state
        x, y = images[index], labels[index]  # [B, 28, 28], [B]

        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        correct = correct + jnp.sum(jnp.argmax(logits, -1) == y)
        return (params, opt_state, loss_sum + loss, correct), loss
    return train_step


class Runner:
    """The workload at one batch size, compiled as `setting["mode"]` (module docstring)."""

    def __init__(self, setting: dict, batch_size: int, weights: Sequence[Tuple[np.ndarray, np.ndarray]], data: dict):
        self.batch_size, self.mode, self.k = batch_size, setting["mode"], setting.get("steps_per_execution", 1)
        self.model, self.tx = MLP(), optax.sgd(LEARNING_RATE)
        self.params = {f"Dense_{layer}": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
                       for layer, (kernel, bias) in enumerate(weights)}
        self.opt_state = self.tx.init(self.params)
        self.images, self.labels = jnp.asarray(data["train_images"]), jnp.asarray(data["train_labels"])
        self.test_images, self.test_labels = jnp.asarray(data["test_images"]), jnp.asarray(data["test_labels"])
        train_step = make_train_step(self.model, self.tx)
        self.step = jax.jit(train_step, donate_argnums=0)
        self.scan = jax.jit(lambda state, images, labels, block: jax.lax.scan(
            lambda carry, index: train_step(carry, images, labels, index), state, block), donate_argnums=0)
        self.predict = jax.jit(lambda params, images: jnp.argmax(self.model.apply({"params": params}, images), -1))

    def train(self, order: np.ndarray) -> Tuple[float, float]:
        """Trains on the batches of `order` [steps, B]; returns their mean loss and accuracy."""
        state = (self.params, self.opt_state, jnp.float32(0), jnp.int32(0))
        if self.mode == "step":
            for index in order:
                state, _ = self.step(state, self.images, self.labels, index)
        else:
            k = len(order) if self.mode == "epoch" else self.k
            for start in range(0, len(order), k):
                state, _ = self.scan(state, self.images, self.labels, order[start:start + k])
        self.params, self.opt_state, loss_sum, correct = state
        return float(loss_sum) / len(order), int(correct) / order.size

    def evaluate(self) -> float:
        return float(jnp.mean(self.predict(self.params, self.test_images) == self.test_labels))

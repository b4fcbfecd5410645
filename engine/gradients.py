"""The gradient of a batch's loss, two ways: recorded by the tape, or the backward pass by hand.

Both give the step the same three things, `(loss, logits, gradients)`, so `train_step` does not
care which one ran (`Trainer(gradients="tape" | "manual")`):

    tape:    with tf.GradientTape() as tape:              # record the forward pass...
                 logits = model.logits(images)
                 loss = output_loss(loss_fn, labels, logits, model.output_activation)
             gradients = tape.gradient(loss, variables)   # ...and let TensorFlow play it backwards

    manual:  logits, kept = model.forward_logits(images)  # the forward pass, keeping what each rule needs
             loss = output_loss(loss_fn, labels, logits, model.output_activation)
             d_logits = output_loss_backward(...)         # (softmax(z) - onehot(y)) / batch
             _, gradients = model.backward_logits(kept, d_logits)   # each layer's rule, in reverse order

The manual pass is the chain rule, written: the loss's rule gives dL/dlogits (engine/losses.py),
each layer's `backward` turns the gradient at its output into the gradient at its input and at
its variables (layers/dense.py: dW = x^T delta, db = sum delta, dx = delta W^T; the activation's
rule is in engine/activations.py), and the container runs the rules in reverse order
(layers/sequential.py, layers/model.py). `engine.gradient_check` proves both ways against
central differences; they agree to float32 rounding, and run at the same speed (bench.report).

A batch's gradient can also be taken in shards (`sharded`): cut into row blocks of n_1 + ... +
n_S = B rows, each shard's own mean loss L_s and gradient, weighed by its share, are the batch's:

    L  = (1/B) sum_i loss_i = sum_s (n_s / B) L_s          dL/dw = sum_s (n_s / B) dL_s/dw

This is what `tf.distribute` does with replicas (engine/distribute/distributed_training.py weighs a
replica's share the same way), here inside one compiled program on one device: the shards' forward
and backward passes share no value until their gradients are summed, so XLA:CPU's runtime (or, in
graph mode, TensorFlow's executor) runs them side by side, one on each core, where the whole batch
hands every op to both cores in turn; `engine.execution.shards_for` says where that was measured
to pay. Exact in real arithmetic for a loss that is a mean over examples (every loss in
engine/losses.py) and a model whose examples do not meet inside it (every layer in layers/: no
batch statistics); in float32 the sums are added in another order, so the numbers agree to
rounding, not bit for bit.
"""

from typing import Callable, Tuple

import tensorflow as tf

from engine import losses

GRADIENTS = ("tape", "manual")

Gradients = Tuple[tf.Tensor, tf.Tensor, list]  # (loss, logits, one gradient per trainable variable)


def tape_gradients(model, loss_fn: Callable, images: tf.Tensor, labels: tf.Tensor) -> Gradients:
    """The loss, the logits and dL/dv for every trainable variable v, by `tf.GradientTape`."""
    with tf.GradientTape() as tape:
        logits = model.logits(images)  # [batch, classes]: the output layer before its activation
        with tf.name_scope("loss"):
            loss = losses.output_loss(loss_fn, labels, logits, model.output_activation)  # scalar
    with tf.name_scope("gradients"):
        gradients = tape.gradient(loss, model.trainable_variables)  # one tensor per variable, same shapes
    return loss, logits, gradients


def manual_gradients(model, loss_fn: Callable, images: tf.Tensor, labels: tf.Tensor) -> Gradients:
    """`tape_gradients`, from the backward rules written beside each forward (module docstring)."""
    logits, kept = model.forward_logits(images)  # [batch, classes], and each layer's inputs and outputs
    with tf.name_scope("loss"):
        loss = losses.output_loss(loss_fn, labels, logits, model.output_activation)
    with tf.name_scope("gradients"):
        d_logits = losses.output_loss_backward(loss_fn, labels, logits, model.output_activation)
        _, gradients = model.backward_logits(kept, d_logits)
    return loss, logits, gradients


def sharded(gradients: Callable[..., Gradients], shards: int) -> Callable[..., Gradients]:
    """`gradients` (`tape_gradients` or `manual_gradients`) computed on `shards` row blocks of the
    batch and combined by the formula of the module docstring.

    Returns a function of `(model, loss_fn, images, labels)` giving what `gradients` gives for the
    whole batch: the mean loss, the logits [batch, classes] in the batch's order, and one gradient
    per trainable variable. `shards` = 1 returns `gradients` itself.

    The first B mod S shards take one row more (`shard_sizes`). A batch of fewer rows than shards
    leaves some shards empty: their gradients are sums over no rows, zeros, but their mean loss is
    0/0, so its weight 0 is applied with `tf.where`, not a product (0 * NaN is NaN).
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if shards == 1:
        return gradients

    def sharded_gradients(model, loss_fn: Callable, images: tf.Tensor, labels: tf.Tensor) -> Gradients:
        sizes = shard_sizes(tf.shape(labels)[0], shards)  # [shards]
        parts = [gradients(model, loss_fn, shard_images, shard_labels)  # (L_s, logits_s, dL_s/dw)
                 for shard_images, shard_labels in zip(tf.split(images, sizes, num=shards),
                                                       tf.split(labels, sizes, num=shards))]
        weights = tf.cast(sizes, tf.float32) / tf.cast(tf.reduce_sum(sizes), tf.float32)  # n_s / B
        loss = tf.add_n([tf.where(sizes[s] > 0, tf.cast(weights[s], part[0].dtype) * part[0], tf.zeros_like(part[0]))
                         for s, part in enumerate(parts)])
        logits = tf.concat([part[1] for part in parts], axis=0)  # [batch, classes], the batch's order
        per_variable = zip(*[part[2] for part in parts])  # for each variable, its S shard gradients
        grads = [None if shard_grads[0] is None else  # a variable the loss does not reach (the optimizer skips it)
                 tf.add_n([tf.cast(weights[s], g.dtype) * g for s, g in enumerate(shard_grads)])
                 for shard_grads in per_variable]
        return loss, logits, grads

    return sharded_gradients


def shard_sizes(batch_size: tf.Tensor, shards: int) -> tf.Tensor:
    """[shards] row counts summing to `batch_size`, as even as can be: the first `batch_size mod
    shards` shards take one row more (7 rows in 2 shards: 4 and 3; 1 row in 2 shards: 1 and 0)."""
    base, extra = batch_size // shards, batch_size % shards
    return base + tf.cast(tf.range(shards) < extra, batch_size.dtype)


def by_name(gradients: str) -> Callable[..., Gradients]:
    """`tape_gradients` for "tape", `manual_gradients` for "manual"; ValueError otherwise."""
    if gradients not in GRADIENTS:
        raise ValueError(f"gradients must be one of {', '.join(GRADIENTS)}, got {gradients!r}")
    return tape_gradients if gradients == "tape" else manual_gradients


def check_manual(model, loss_fn: Callable) -> None:
    """Refuses, before anything is traced, a model or loss that manual gradients cannot run through.

    Raises:
      ValueError: naming the first layer without a backward rule (a user's own layer, or an
        activation that engine.activations.BACKWARD does not list), or a loss without one.
    """
    missing = getattr(model, "missing_backward", None)
    problem = (missing() if missing else f"{type(model).__name__} '{getattr(model, 'name', model)}' is not a "
               "layers.Layer, so it has no backward rule")
    if problem is None and losses.backward(loss_fn) is None:
        problem = f"the loss {getattr(loss_fn, '__name__', loss_fn)!r} has no backward rule in engine.losses.BACKWARD"
    if problem:
        raise ValueError(f"gradients='manual' cannot run: {problem}. Write its rule beside its forward, "
                         "or use gradients='tape'")

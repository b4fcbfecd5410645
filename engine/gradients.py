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

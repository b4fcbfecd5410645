"""The numerical gradient check: a gradient computed by rules, proved by central differences.

For one entry w_i of a variable, the central difference

    D(h) = (L(w + h e_i) - L(w - h e_i)) / 2h  =  dL/dw_i + c h^2 + O(h^4)  (+ rounding, ~eps |L| / h)

needs nothing but the loss itself: no rule, no tape. So a gradient that agrees with it entry
by entry is right. Its two errors pull h both ways: the h^2 term wants a small step, the
rounding of L (float64 keeps 16 digits of |L| ~ 2) a large one; at h = 1e-5 an entry of 1e-5
is only known to ~1e-6. Richardson's extrapolation takes both: from D(h) and D(h/2),

    dL/dw_i ~ (4 D(h/2) - D(h)) / 3                 (the h^2 terms cancel; error O(h^4))

so a large step (1e-3: rounding ~1e-13) is exact to ~1e-12. A ReLU kink within h of w makes
the two differences disagree; the step is then halved until they agree (`numerical_derivative`),
which keeps it as large, and so the rounding as small, as the smooth stretch around w allows.
As CS231n's `eval_numerical_gradient` and `grad_check_sparse` do, a few random entries of every
variable (and of the inputs, for a layer) are checked, and the agreement is measured by the
relative error CS231n uses,

    relative_error = |a - n| / max(|a| + |n|, 1e-8)      a: the analytic entry, n: the numerical one

which reads the same for large and small gradients (the floor keeps 0 vs 0 at 0).

How to read the numbers. In float64 (the check's precision: make the model with dtype="float64"),
a right gradient gives 1e-12 to 1e-9; this project's tests require at most 1e-7. Around 1e-5
look closer (an entry at a ReLU kink itself, say a zero bias on an all-zero input, has no
derivative: the rule's choice, 0, is not the differences' average); 1e-2 or more is a wrong rule.
In float32 the rounding of L alone is ~1e-7 * |L| / h: errors of 1e-3 there say nothing, which
is why the check runs in float64.
"""

import dataclasses
from typing import Callable, Dict, List, Sequence, Union

import numpy as np
import tensorflow as tf

from engine import gradients as backprop
from engine import losses


@dataclasses.dataclass(frozen=True)
class Check:
    """One tensor's check: `entries` entries compared, the largest relative error among them, and that
    entry's analytic and numerical values."""

    name: str
    shape: tuple
    entries: int
    max_relative_error: float
    analytic: float
    numerical: float


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> np.ndarray:
    """CS231n's `|a - n| / max(|a| + |n|, 1e-8)`, entry by entry."""
    return np.abs(analytic - numerical) / np.maximum(np.abs(analytic) + np.abs(numerical), 1e-8)


def numerical_derivative(loss_at: Callable[[float], float], step: float = 1e-3, agreement: float = 1e-6,
                         smallest: float = 1e-6) -> float:
    """dL/dw at w from `loss_at(d)` = L(w + d): Richardson's `(4 D(h/2) - D(h)) / 3` of central differences
    D, the step halved while D(h) and D(h/2) differ by more than `agreement` (relative: a kink or a large
    curvature within h), down to `smallest`."""
    def central(h: float) -> float:
        return (loss_at(h) - loss_at(-h)) / (2.0 * h)

    while True:
        coarse, fine = central(step), central(step / 2)
        if step / 2 < smallest or abs(fine - coarse) <= agreement * max(abs(fine), abs(coarse), 1e-8):
            return (4.0 * fine - coarse) / 3.0
        step /= 2


def check(loss_of: Callable[[], tf.Tensor], tensors: Dict[str, tf.Variable], analytic: Dict[str, np.ndarray],
          entries: int = 10, step: float = 1e-3, seed: int = 0) -> List[Check]:
    """Compares `analytic[name]` with `numerical_derivative` of `loss_of()` at `entries` random entries of
    each of `tensors` (all of them, for a smaller tensor); each tensor is restored exactly afterwards."""
    rng = np.random.default_rng(seed)
    checks = []
    for name, variable in tensors.items():
        original = variable.numpy()
        indices = rng.choice(original.size, size=min(entries, original.size), replace=False)

        def loss_at(index: int, delta: float) -> float:
            moved = original.copy().reshape(-1)
            moved[index] += delta  # w + d e_i
            variable.assign(moved.reshape(original.shape))
            return float(loss_of())

        numerical = np.array([numerical_derivative(lambda delta: loss_at(index, delta), step) for index in indices])
        variable.assign(original)
        values = np.asarray(analytic[name], np.float64).reshape(-1)[indices]
        errors = relative_error(values, numerical)
        worst = int(np.argmax(errors))
        checks.append(Check(name, original.shape, len(indices), float(errors[worst]), float(values[worst]),
                            float(numerical[worst])))
    return checks


def check_model(model, loss_fn: Callable, images, labels, gradients: Union[str, Callable] = "tape",
                entries: int = 10, step: float = 1e-3, seed: int = 0) -> List[Check]:
    """Checks the gradient of the step's loss (`losses.output_loss` on the model's logits) with respect to
    every trainable variable, from `gradients` ("tape", "manual" or a function like those of
    engine/gradients.py). Make the model with dtype="float64" to read the numbers as the docstring says."""
    compute = backprop.by_name(gradients) if isinstance(gradients, str) else gradients
    if not model.built:
        model.build((None,) + tuple(np.shape(images)[1:]))
    variables = model.trainable_variables
    images = tf.cast(images, variables[0].dtype)  # the model's precision: float64 for the numbers above
    labels = tf.convert_to_tensor(labels)
    _, _, grads = compute(model, loss_fn, images, labels)
    loss_of = tf.function(lambda: losses.output_loss(loss_fn, labels, model.logits(images), model.output_activation),
                          autograph=False)
    return check(loss_of, {v.name: v for v in variables}, {v.name: g.numpy() for v, g in zip(variables, grads)},
                 entries, step, seed)


def check_layer(layer, inputs, gradients: str = "tape", entries: int = 10, step: float = 1e-3,
                seed: int = 0) -> List[Check]:
    """Checks one layer's gradients with respect to its inputs and its variables, under the loss
    `L = sum(r * layer(x))` for a fixed random r: dL/d(outputs) is then exactly r, so "manual" tests
    `layer.backward(kept, r)` alone. `inputs` is one tensor, or a list for a merge layer."""
    listed = isinstance(inputs, (list, tuple))
    sources = [tf.Variable(tf.convert_to_tensor(x, layer.dtype), name=f"inputs_{i}")
               for i, x in enumerate(inputs if listed else [inputs])]
    argument = lambda: list(sources) if listed else sources[0]  # noqa: E731 (the layer's call, as given)
    outputs, kept = layer.forward(argument())
    upstream = tf.constant(np.random.default_rng(seed).normal(size=outputs.shape.as_list()), outputs.dtype)
    variables = list(layer.trainable_variables)
    if gradients == "manual":
        d_inputs, d_variables = layer.backward(kept, upstream)
        d_inputs = d_inputs if listed else [d_inputs]
    else:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(upstream * layer(argument()))
        found = tape.gradient(loss, sources + variables)
        d_inputs, d_variables = found[:len(sources)], found[len(sources):]
    tensors = {**{s.name: s for s in sources}, **{v.name: v for v in variables}}
    analytic = {name: np.asarray(d) for name, d in zip(tensors, list(d_inputs) + list(d_variables))}
    return check(lambda: tf.reduce_sum(upstream * layer(argument())), tensors, analytic, entries, step, seed)


def table(checks: Sequence[Check]) -> str:
    """The checks as an aligned text table, one row per tensor, the worst entry's values beside its error."""
    lines = [f"{'tensor':<24} {'shape':<14} {'entries':>7} {'max rel. error':>14} {'analytic':>12} {'numerical':>12}"]
    for c in checks:
        lines.append(f"{c.name:<24} {str(c.shape):<14} {c.entries:>7} {c.max_relative_error:>14.2e} "
                     f"{c.analytic:>12.4e} {c.numerical:>12.4e}")
    return "\n".join(lines)

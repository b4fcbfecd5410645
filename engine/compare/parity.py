"""Parity with tf.keras: the same network, weights and batches on both sides, compared as they learn.

`compare` runs three comparisons on real data and returns a `ParityReport`:

1. Forward: both models' outputs from the same weights.
2. Steps: the first `recorded_steps` batches, each side computing its own gradients (ours as
   the engine's step does, by tape or by the manual backward pass, `setup.gradients`; Keras's
   by its tape, of its loss on its model) and updating with its own
   optimizer (`setup.optimizer`, from `engine.optimizers`; Keras's of the same class and
   arguments). Per step: both losses, each
   variable's gradient difference, and the weights' difference after the update.
3. Fit: `Trainer.fit` in the chosen execution mode against Keras's own training path,
   `model.compile(...)` + `model.fit(...)`, with Keras's shuffling off and the engine's batch
   order fed to it explicitly every epoch. Per step: both losses (Keras's read from its loss
   object as it trains); per epoch: loss, accuracy, test figures, seconds, weights' difference.

`compare` turns on TensorFlow's op determinism, so a report is reproducible run to run.

Why the two sides are close but not bit-identical, and why they drift apart (measured on the
reference configuration, 2-core x86 CPU, TensorFlow 2.21):

- The math is the same everywhere (both sides score the softmax output's cross-entropy from
  its logits: Keras through an attribute on its softmax's output, the engine in its step,
  engine/losses.py's `output_loss`), but not the rounding of one reduction. Keras calls the fused
  kernel `tf.nn.sparse_softmax_cross_entropy_with_logits`, which sums the ten exponentials as
  one 8-wide vector (Eigen's polynomial exp) plus a 2-element scalar tail (the C library's
  expf). Our `softmax(z) - onehot` (the manual rule; the tape's autodiff of the same formula
  rounds within a few ulps of it) sums `tf.exp` values; no sequence of TensorFlow ops
  reproduces the kernel's scalar tail, and in about 12% of batches the two sums differ in
  the last bit. So the step-1 gradients differ by ~1e-8, and the first hundreds of steps'
  losses by ~1e-7 relative.
- A ReLU turns those last-bit differences into large ones. When a hidden unit's pre-activation
  falls within ~1e-6 of zero for some example, it is on in one model and off in the other, and
  that unit's gradient differs wholesale (measured with the tape's gradients: the gradients
  jump from at most 6e-7 to 5e-5 apart at step 630 of epoch 1). The report counts these splits
  per step (`steps.relu_splits`). After that the two runs are two equally good trainings of the
  same model, 1e-3 to 1e-2 apart in weights, while their test loss and accuracy stay close.
- With manual gradients (`setup.gradients = "manual"`) the output layer's rule rounds as the
  fused kernel does on most batches, and no split comes in the whole first epoch: weights 3.0e-7
  apart after it (measured on the 2-core AMD EPYC, TensorFlow 2.21; tests/test_parity.py).
"""

import dataclasses
import functools
import time
from typing import Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from engine import losses
from engine.batches import epoch_batches
from engine.callbacks import LambdaCallback
from engine.training import Trainer
from engine.compare import keras_twin
from engine.compare.steps import compare_steps
from engine.compare.weights import copy_variables, max_abs_diff
from layers import mlp
from engine.run import quiet, writes

# Under op determinism (engine/run/determinism.py) tf.data rewrites the parallel map of Keras's array
# adapter into a MapDataset and copies along an attribute that op lacks; TensorFlow then logs, from a
# tf.data thread while Keras fits or evaluates, a 700-character `E0000 ... NodeDef mentions attribute`
# line saying it ignores it. Harmless and not ours, so that one line is dropped around Keras's calls.
_TF_DATA_REWRITE_NOTE = r"NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition"


BOUNDED_STEPS = 200  # the per-step loss bound is stated over the first 200 steps


@dataclasses.dataclass(frozen=True)
class ParitySetup:
    """What both sides train: the MLP, its output, the optimizer, batching, and the engine's mode.

    The optimizer is `optimizer` by name (`engine.optimizers.get`) with `learning_rate`, and
    `momentum`, `nesterov` when it takes them, plus `optimizer_args` ((name, value) pairs by
    Keras's names, e.g. (("beta_1", 0.8),)); Keras's side is its twin (`keras_twin.optimizer_pair`).
    """

    hidden: Tuple[int, ...] = (256, 128)
    output: str = "softmax"  # "softmax" (probabilities) or "logits" (loss with from_logits=True)
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    optimizer_args: Tuple[Tuple[str, object], ...] = ()
    batch_size: int = 32
    epochs: int = 5
    recorded_steps: int = 200
    mode: str = "graph"
    steps_per_execution: int = 1
    gradients: str = "tape"  # how the engine's side computes its gradients: "tape" or "manual" (engine/gradients.py)
    shards: int = 1  # row blocks of each batch the engine's gradients are computed on (engine/gradients.py's `sharded`)
    seed: int = 0
    weights_from: str = "engine"  # which side's initial weights both start from: "engine" or "keras"


def engine_side(setup: ParitySetup, input_shape: Tuple[int, ...], num_classes: int):
    """Our model (built, seeded) and our loss for `setup`."""
    tf.random.set_seed(setup.seed)
    model = mlp(setup.hidden, num_classes, output_activation="softmax" if setup.output == "softmax" else None)
    model.build((None,) + tuple(input_shape))
    loss = functools.partial(losses.sparse_categorical_crossentropy, from_logits=setup.output == "logits")
    return model, loss


def keras_side(setup: ParitySetup, input_shape: Tuple[int, ...], num_classes: int):
    """The tf.keras twin of `engine_side`: the same layers, Keras's own loss."""
    keras.utils.set_random_seed(setup.seed + 1)  # its own draw: weights_from decides who wins
    model = keras_twin.reference_mlp(setup.hidden, num_classes, input_shape,
                                     "softmax" if setup.output == "softmax" else None)
    return model, RecordingLoss(from_logits=setup.output == "logits")


class RecordingLoss(keras.losses.SparseCategoricalCrossentropy):
    """Keras's sparse cross-entropy, unchanged, keeping the value of the last batch it saw.

    `model.fit` only reports running means; this is how its per-step loss is read exactly.
    """

    def __init__(self, from_logits: bool):
        super().__init__(from_logits=from_logits)
        self.last = tf.Variable(0.0, trainable=False)

    def __call__(self, y_true, y_pred, sample_weight=None):
        value = super().__call__(y_true, y_pred, sample_weight)
        self.last.assign(value)
        return value


@dataclasses.dataclass
class ParityReport:
    setup: Dict
    forward: Dict = dataclasses.field(default_factory=dict)
    steps: List[Dict] = dataclasses.field(default_factory=list)
    fit_steps: List[Dict] = dataclasses.field(default_factory=list)
    epochs: List[Dict] = dataclasses.field(default_factory=list)

    def summary(self) -> Dict[str, float]:
        """The figures the acceptance bounds are stated in, and the first ReLU split (0: none)."""
        last = self.epochs[-1]
        return {
            "first_relu_split_step": next((s["step"] for s in self.steps if s["relu_splits"]), 0),
            "forward_max_abs_diff": self.forward["max_abs_diff"],
            "step_loss_max_rel_diff": max(s["loss_rel_diff"] for s in self.steps[:BOUNDED_STEPS]),
            "fit_step_loss_max_rel_diff": max(s["loss_rel_diff"] for s in self.fit_steps[:BOUNDED_STEPS]),
            "step1_gradient_max_abs_diff": max(self.steps[0]["gradient_max_abs_diff"]),
            "epoch1_weights_max_abs_diff": self.epochs[0]["weights_max_abs_diff"],
            "final_test_accuracy_diff": abs(last["engine_test_accuracy"] - last["keras_test_accuracy"]),
            "final_test_loss_diff": abs(last["engine_test_loss"] - last["keras_test_loss"]),
        }

    def to_json(self, path: str) -> None:
        writes.write_json(path, {**dataclasses.asdict(self), "summary": self.summary()})


def compare(setup: ParitySetup, train: Tuple[np.ndarray, np.ndarray], test: Tuple[np.ndarray, np.ndarray],
            on_epoch: Callable[[Dict], None] = lambda row: None, sides: Optional[Callable] = None,
            progress: Callable[[str], None] = lambda line: None) -> ParityReport:
    """Trains the engine and tf.keras side by side on `train`, evaluating on `test` (see module doc).

    `on_epoch(row)` is called as Keras finishes each epoch (the engine has trained them all by
    then); `progress(line)` hears each phase start and each engine epoch end, so a long
    comparison is never silent. Neither changes what is computed.

    `sides(setup, input_shape, num_classes)` -> (ours, our_loss, theirs, their_loss) replaces
    the MLP of `setup.hidden` with other twins, e.g. a functional model and
    `keras_twin.functional_twin` of it; its variables must pair up position by position.
    """
    tf.config.experimental.enable_op_determinism()
    (x, y), (x_test, y_test) = train, test
    num_classes = int(max(y.max(), y_test.max())) + 1
    if sides is None:
        ours, our_loss = engine_side(setup, x.shape[1:], num_classes)
        theirs, their_loss = keras_side(setup, x.shape[1:], num_classes)
    else:
        ours, our_loss, theirs, their_loss = sides(setup, x.shape[1:], num_classes)
    if setup.weights_from == "engine":
        copy_variables(ours.trainable_variables, theirs.trainable_variables)
    else:
        copy_variables(theirs.trainable_variables, ours.trainable_variables)
    initial = [v.numpy() for v in ours.trainable_variables]
    report = ParityReport(setup=dataclasses.asdict(setup))
    report.forward = {"max_abs_diff": max_abs_diff(ours(x_test).numpy(), theirs(x_test).numpy()),
                      "examples": len(x_test)}
    steps = min(setup.recorded_steps, -(-len(y) // setup.batch_size))  # at most one epoch's batches
    progress(f"Steps: the first {steps} batches through both sides' gradients and optimizer, one by one")
    report.steps = compare_steps(setup, ours, our_loss, theirs, their_loss, x, y)
    for model in (ours, theirs):
        copy_variables([tf.constant(w) for w in initial], model.trainable_variables)
    report.fit_steps, report.epochs = _compare_fits(setup, ours, our_loss, theirs, their_loss, train, test, on_epoch,
                                                    progress)
    return report


def _compare_fits(setup, ours, our_loss, theirs, their_loss, train, test, on_epoch, progress):
    """Trainer.fit against Keras's compile + fit, epoch by epoch, on the same batch order."""
    (x, y), (x_test, y_test) = train, test
    our_step_losses, snapshots = [], []
    our_optimizer, their_optimizer = keras_twin.optimizer_pair(setup)
    trainer = Trainer(ours, our_loss, our_optimizer, setup.mode, setup.steps_per_execution, setup.gradients,
                      shards=setup.shards)
    def record_losses(epoch: int, step: int, losses: tf.Tensor) -> None:
        if len(our_step_losses) < setup.recorded_steps:
            our_step_losses.extend(losses.numpy()[:setup.recorded_steps - len(our_step_losses)].tolist())

    def end_epoch(epoch: int, logs: Dict) -> None:
        snapshots.append([v.numpy() for v in ours.trainable_variables])
        progress(f"engine: epoch {epoch}/{setup.epochs} trained - loss {logs['loss']:.4f} - "
                 f"{logs['seconds']:.1f}s")

    progress(f"engine: Trainer.fit, {setup.mode} mode, {setup.epochs} epoch{'s' * (setup.epochs != 1)}")
    history = trainer.fit(x, y, setup.epochs, setup.batch_size, validation_data=test, seed=setup.seed, callbacks=[
        LambdaCallback(on_block_end=record_losses), LambdaCallback(on_epoch_end=end_epoch)])
    progress("tf.keras: compile + fit, one epoch at a time on the engine's batch order; a row as each ends")
    theirs.compile(optimizer=their_optimizer, loss=their_loss, metrics=["accuracy"])
    their_step_losses: List[float] = []
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: their_step_losses.append(
        float(their_loss.last.numpy())) if len(their_step_losses) < setup.recorded_steps else None)
    rows = []
    with quiet.without_lines(_TF_DATA_REWRITE_NOTE):
        for epoch, (logs, snapshot) in enumerate(zip(history, snapshots), 1):
            order = np.concatenate(list(epoch_batches(len(y), setup.batch_size, setup.seed, epoch)))
            start = time.perf_counter()
            fitted = theirs.fit(x[order], y[order], batch_size=setup.batch_size, epochs=1, shuffle=False,
                                verbose=0, callbacks=[recorder])
            seconds = time.perf_counter() - start
            test_loss, test_accuracy = theirs.evaluate(x_test, y_test, batch_size=setup.batch_size, verbose=0)
            row = {"epoch": epoch,
                   "engine_loss": logs["loss"], "keras_loss": fitted.history["loss"][0],
                   "engine_accuracy": logs["accuracy"], "keras_accuracy": fitted.history["accuracy"][0],
                   "engine_test_loss": logs["val_loss"], "keras_test_loss": float(test_loss),
                   "engine_test_accuracy": logs["val_accuracy"], "keras_test_accuracy": float(test_accuracy),
                   "engine_seconds": logs["seconds"], "keras_seconds": seconds,
                   "weights_max_abs_diff": max(max_abs_diff(a, b.numpy())
                                               for a, b in zip(snapshot, theirs.trainable_variables))}
            rows.append(row)
            on_epoch(row)
    fit_steps = [{"step": step, "engine_loss": a, "keras_loss": b, "loss_rel_diff": abs(a - b) / abs(b)}
                 for step, (a, b) in enumerate(zip(our_step_losses, their_step_losses), 1)]
    return fit_steps, rows

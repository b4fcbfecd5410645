"""How scratchflow learns. The modules directly here are the core: the math and its derivatives
(activations, initializers, losses), the gradients two ways (the tape's, and the backward pass
written out) and their numerical check, the optimizers (the `optimizers` package: a base and one
file per rule), the metrics, the training step and `Trainer`, the execution modes and when a step
needs AutoGraph (`tracing`), an epoch's batches and the callback hooks. They import only the
standard library, NumPy, TensorFlow and each other.

The subpackages are the rings around the core, in levels; a ring imports only the core and rings
of lower levels (tests/test_architecture.py keeps it so): `run` (what every program uses: the
run's config, the callbacks that make it survive and report, whole-or-nothing writes); `data`,
`distribute`, `compare` (against Keras); `deploy`, `experiments`; `tour` (learning aids); and
`app`, the application: the job `train.py` drives and `--compare_keras`.

Reading order, top to bottom — the whole of how training works (README.md gives the same):

1. engine/tour/sections/loop.py — one epoch as a bare `for` loop: forward, loss, tape, SGD.
2. layers/dense.py — `activation(x @ kernel + bias)`, and beside it its backward rule.
3. engine/activations.py — relu, softmax, log-softmax, each with its derivative.
4. engine/losses.py — the cross-entropies and MSE with their derivatives; why softmax +
   cross-entropy is computed from the logits (`output_loss`).
5. engine/gradients.py — the tape's gradients and the manual ones side by side; the chain rule
   over a model is layers/sequential.py's and layers/model.py's `backward`.
6. engine/gradient_check.py — central differences that prove both.
7. engine/optimizers/optimizer.py — what every optimizer shares; then sgd.py and adam.py, the
   update rules (rmsprop.py, adamw.py beside them).
8. engine/training.py — the step and the epoch loop, `Trainer.fit`.
"""

from engine import startup

startup.install()  # the first import of TensorFlow, wherever it happens, without its CUDA-probe lines

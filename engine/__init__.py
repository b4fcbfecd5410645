"""How scratchflow learns. The modules directly here are the core: the math (activations,
initializers, losses), the optimizer, the metrics, the training step and `Trainer`, the execution
modes, an epoch's batches and the callback hooks. They import only the standard library, NumPy,
TensorFlow and each other.

The subpackages are the rings around the core: `run` (a training job and the callbacks that make
it survive and report), `data`, `distribute`, `experiments`, `deploy`, `compare` (against Keras)
and `tour` (learning aids).

A newcomer should read `layers/dense.py`, then `engine/losses.py`, `engine/optimizers.py` and
`engine/training.py` top to bottom: that is the whole of how training works.
"""

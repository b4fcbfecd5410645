"""How scratchflow learns and runs: the math (activations, initializers, losses), the
optimizer, the metrics, the training loop, and the data it trains on.

A newcomer should read `engine/losses.py`, `engine/optimizers.py` and `engine/training.py`
(after `layers/dense.py`) top to bottom: that is the whole of how training works.
"""

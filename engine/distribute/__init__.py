"""Training on `tf.distribute`: choosing a strategy (`strategies`), the replicated step and its
summed gradients (`replicated`, `distributed_training`), and a local multi-worker launcher
(`launch`)."""

"""k-fold cross-validation of one set of hyperparameters: the score a search ranks by.

A single train/validation split gives a noisy score: with a few thousand images, which ones
land in the validation set moves accuracy by a point or more, enough to reorder close
candidates. k-fold cross-validation trains k models, each validated on a different k-th of
the data and trained on the rest, and reports the mean (and spread) of the k scores:

    score = mean over folds i of accuracy(model trained on all folds but i, fold i)

Folds are stratified (scikit-learn's `StratifiedKFold`): each holds every class in the
proportion of the whole, so no fold is short of, say, sandals. The folds are drawn from
`seed`, so every candidate of a search is scored on the same folds — a like-for-like
comparison — and each fold's model starts from weights drawn from the same seed.
"""

import time
from typing import Dict

import numpy as np
import tensorflow as tf
from sklearn.model_selection import StratifiedKFold

from engine import losses, optimizers
from engine.training import Trainer
from layers import mlp


def cross_validate(params: Dict, images: np.ndarray, labels: np.ndarray, num_classes: int,
                   folds: int = 3, seed: int = 0, mode: str = "graph") -> Dict:
    """Trains and scores `params` on each of `folds` folds; returns the mean and per-fold results.

    Args:
      params: hidden (tuple of sizes), batch_size, epochs, learning_rate and optionally gradients ("tape",
        the default, or "manual") and optimizer (a name for `engine.optimizers.get`, default "sgd",
        with Keras's defaults besides the learning rate) — one search candidate.
      images, labels: the data to split into folds, float32 [N, ...] and int [N].
      num_classes: the classifier's output size.
      folds, seed: the number of folds, and the seed of the fold split, the weights and the shuffling.
      mode: the Trainer's execution mode (eager, graph or xla).

    Returns:
      {"accuracy", "accuracy_std", "loss", "fold_accuracies", "seconds"}: mean validation
      accuracy and its standard deviation over folds, mean validation loss, and the wall time.
    """
    start = time.perf_counter()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    for train, held_out in splitter.split(np.zeros(len(labels)), labels):
        tf.random.set_seed(seed)
        model = mlp(tuple(params["hidden"]), num_classes)
        optimizer = optimizers.get(params.get("optimizer", "sgd"), learning_rate=params["learning_rate"])
        trainer = Trainer(model, losses.sparse_categorical_crossentropy, optimizer, mode,
                          gradients=params.get("gradients", "tape"))
        trainer.fit(images[train], labels[train], params["epochs"], params["batch_size"], seed=seed)
        scores.append(trainer.evaluate(images[held_out], labels[held_out], params["batch_size"]))
    accuracies = [score["accuracy"] for score in scores]
    return {"accuracy": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "loss": float(np.mean([score["loss"] for score in scores])), "fold_accuracies": accuracies,
            "seconds": time.perf_counter() - start}

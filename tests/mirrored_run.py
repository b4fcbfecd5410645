"""Trains the same model on one device and under MirroredStrategy on 2 logical CPU devices;
writes what tests/test_mirrored.py compares to a JSON file.

    python -m tests.mirrored_run OUT.json

A separate process because the CPU must be split before TensorFlow's runtime starts, which
in a pytest session other tests have long since done.
"""

import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from engine import losses, optimizers  # noqa: E402
from engine.callbacks import LambdaCallback  # noqa: E402
from engine.distribute import strategies  # noqa: E402
from engine.data import idx  # noqa: E402
from engine.distribute.distributed_training import DistributedTrainer  # noqa: E402
from engine.training import Trainer  # noqa: E402
from layers import mlp  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
STEPS, BATCH = 100, 64


def data(count: int):
    images = idx.read_idx(f"{FASHION}/train-images-idx3-ubyte.gz")[:count].astype(np.float32) / 255.0
    return images, idx.read_idx(f"{FASHION}/train-labels-idx1-ubyte.gz")[:count].astype(np.int32)


SGD_MOMENTUM = ("sgd", {"learning_rate": 0.05, "momentum": 0.9})
# Each other optimizer with every slot it can have in use, and weight decay (applied per replica).
OTHER_OPTIMIZERS = {"adam": ("adam", {"amsgrad": True}), "adamw": ("adamw", {}),
                    "rmsprop": ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.01})}
OTHER_STEPS = 32


def fresh(strategy=None, optimizer=SGD_MOMENTUM):
    """The reference MLP and an optimizer (by default SGD with momentum, so optimizer slots are
    mirrored too), same seed."""
    tf.random.set_seed(0)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = mlp((256, 128), 10)
        model.build((None, 28, 28))
        return model, optimizers.get(optimizer[0], **optimizer[1])


def train(strategy, mode: str, steps_per_execution: int, images, labels, gradients: str = "tape",
          optimizer=SGD_MOMENTUM) -> dict:
    model, optimizer = fresh(strategy, optimizer)
    arguments = (model, losses.sparse_categorical_crossentropy, optimizer, mode, steps_per_execution, gradients)
    trainer = DistributedTrainer(strategy, *arguments) if strategy else Trainer(*arguments)
    step_losses = []
    history = trainer.fit(images, labels, epochs=1, batch_size=BATCH, seed=None,
                          callbacks=[LambdaCallback(on_block_end=lambda e, s, losses: step_losses.extend(losses.numpy().tolist()))])
    evaluation = trainer.evaluate(images[:1000], labels[:1000], batch_size=100)
    return {"losses": step_losses, "epoch": {k: history[0][k] for k in ("loss", "accuracy")}, "eval": evaluation,
            "weights": [v.numpy().tolist() for v in model.trainable_variables],
            "velocities": [v.numpy().tolist() for v in optimizer.velocities],
            "slots": [slot.numpy().tolist() for kind in optimizer.slot_names for slot in getattr(optimizer, kind)],
            "model": model, "optimizer": optimizer}


def cross_restore(strategy, directory: str, single: dict, mirrored: dict) -> dict:
    """Saves each trained model+optimizer and restores it into a fresh one of the other kind."""
    checks = {}
    for name, source, target_strategy in (("mirrored_to_single", mirrored, None),
                                          ("single_to_mirrored", single, strategy)):
        path = tf.train.Checkpoint(model=source["model"], optimizer=source["optimizer"]).write(
            os.path.join(directory, name))
        model, optimizer = fresh(target_strategy)
        with strategy.scope() if target_strategy else contextlib.nullcontext():
            optimizer.build(model.trainable_variables)
        tf.train.Checkpoint(model=model, optimizer=optimizer).read(path).assert_consumed()
        restored = [v.numpy() for v in list(model.trainable_variables) + list(optimizer.velocities)]
        saved = [v.numpy() for v in list(source["model"].trainable_variables) + list(source["optimizer"].velocities)]
        copies = [part.numpy() for v in model.trainable_variables
                  for part in (target_strategy.experimental_local_results(v) if target_strategy else [v])]
        checks[name] = {"max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(restored, saved)),
                        "iterations": int(optimizer.iterations.numpy()), "copies": len(copies)}
    return checks


def main(out: str) -> None:
    strategies.split_cpu(2)
    strategy = strategies.create("mirrored", device="cpu")
    images, labels = data(STEPS * BATCH)
    # Fewer steps where each step is one call: a call builds a distributed iterator (~0.3 s here).
    runs = {"single": train(None, "graph", 1, images, labels),
            "mirrored_graph_k16": train(strategy, "graph", 16, images, labels),
            "mirrored_manual_k16": train(strategy, "graph", 16, images, labels, "manual"),
            "mirrored_graph_k1": train(strategy, "graph", 1, images[:20 * BATCH], labels[:20 * BATCH]),
            "mirrored_eager": train(strategy, "eager", 1, images[:5 * BATCH], labels[:5 * BATCH])}
    few = (images[:OTHER_STEPS * BATCH], labels[:OTHER_STEPS * BATCH])
    for name, optimizer in OTHER_OPTIMIZERS.items():
        runs[f"single_{name}"] = train(None, "graph", 16, *few, optimizer=optimizer)
        runs[f"mirrored_{name}"] = train(strategy, "graph", 16, *few, optimizer=optimizer)
    result = {"replicas": strategy.num_replicas_in_sync,
              "devices": list(strategy.extended.worker_devices),
              "checkpoints": cross_restore(strategy, os.path.dirname(os.path.abspath(out)),
                                           runs["single"], runs["mirrored_graph_k16"])}
    try:
        model, optimizer = fresh(strategy)
        DistributedTrainer(strategy, model, losses.sparse_categorical_crossentropy, optimizer, "xla")
    except ValueError as error:
        result["xla_error"] = str(error)
    result["runs"] = {name: {k: v for k, v in run.items() if k not in ("model", "optimizer")}
                      for name, run in runs.items()}
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1])

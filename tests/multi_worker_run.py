"""One worker of a small multi-worker run (or the single-process reference); tests launch it.

    python -m tests.multi_worker_run OUT_DIR --examples=2048 --epochs=1 [--strategy=none]

Trains the reference MLP (256-128, SGD with momentum) on the first `examples` Fashion-MNIST
images in order, and writes every step's loss, the epoch logs and the final weights to
OUT_DIR/result.json (worker i > 0: OUT_DIR/worker<i>/result.json). Prints "epoch <n> done" after each epoch, and
for a lost peer one `error:` line and exit status 1, as train.py does.
"""

import argparse
import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from engine import losses, optimizers  # noqa: E402
from engine.callbacks import LambdaCallback  # noqa: E402
from engine.distribute import cluster, strategies  # noqa: E402
from engine.distribute.distributed_training import DistributedTrainer  # noqa: E402
from engine.errors import ClusterError  # noqa: E402
from engine.training import Trainer  # noqa: E402
from layers import mlp  # noqa: E402
from tests.mirrored_run import data  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", help="output directory")
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps_per_execution", type=int, default=8)
    parser.add_argument("--strategy", default="multi_worker")
    parser.add_argument("--collective_timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    out = (cluster.output_dir(args.out, os.environ.get("TF_CONFIG"))  # checked while its port is still free
           if args.strategy == "multi_worker" else args.out)
    strategy = strategies.create(args.strategy, "cpu", args.collective_timeout)
    images, labels = data(args.examples)
    tf.random.set_seed(0)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = mlp((256, 128), 10)
        model.build((None, 28, 28))
        optimizer = optimizers.SGD(0.05, momentum=0.9)
    arguments = (model, losses.sparse_categorical_crossentropy, optimizer, "graph", args.steps_per_execution)
    trainer = DistributedTrainer(strategy, *arguments) if strategy else Trainer(*arguments)
    step_losses = []
    try:
        history = trainer.fit(images, labels, args.epochs, args.batch_size, seed=None,
                              callbacks=[LambdaCallback(
                                  on_block_end=lambda e, s, losses: step_losses.extend(losses.numpy().tolist()),
                                  on_epoch_end=lambda epoch, logs: print(f"epoch {epoch} done", flush=True))])
    except ClusterError as error:
        print(f"error: {error}", flush=True)
        return 1
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "result.json"), "w") as file:
        json.dump({"losses": step_losses, "history": history,
                   "weights": [v.numpy().tolist() for v in model.trainable_variables]}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())

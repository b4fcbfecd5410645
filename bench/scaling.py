"""Data-parallel scaling: training steps/s with 1 and 2 replicas at the same global batch.

    python -m bench.scaling [--examples=32768] [--batch_size=256]    # prints one JSON line

Runs in its own process because the CPU must be split into logical devices before
TensorFlow's runtime starts; `bench.report` starts it and adds its rows to the report.
Replicas are GPUs where there are two or more, else 2 logical devices of the one CPU.

What logical CPU devices can and cannot show: they share the same cores, memory and thread
pools, so 2 replicas cannot beat 1; the ratio measures the cost of the strategy's machinery
(per-replica dispatch, the gradient all-reduce, one distributed iterator per compiled call),
not a speed-up. Only separate devices (GPUs, TPU cores, machines) can show one.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Optional, Sequence

from absl import flags

from engine.run import cli, program

PROGRAM = "python -m bench.scaling"
FLAGS = cli.new_flag_values()
flags.DEFINE_integer("examples", 32768, "Examples per timed epoch.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 256, "Global batch, split over the replicas.", lower_bound=2, flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

from engine import startup  # noqa: E402

tf = startup.import_tensorflow()

import numpy as np  # noqa: E402

from engine import losses, optimizers  # noqa: E402
from engine.distribute import strategies  # noqa: E402
from engine.distribute.distributed_training import DistributedTrainer  # noqa: E402
from engine.training import Trainer  # noqa: E402
from layers import mlp  # noqa: E402

STEPS_PER_EXECUTION = 64


def replica_devices() -> list:
    """Two GPUs if there are, else the two logical CPU devices made by `strategies.split_cpu(2)`."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= 2:
        return ["/device:GPU:0", "/device:GPU:1"]
    strategies.split_cpu(2)
    return ["/device:CPU:0", "/device:CPU:1"]


def steady_steps_per_second(strategy: Optional[tf.distribute.Strategy], x: np.ndarray, y: np.ndarray,
                            batch_size: int) -> float:
    """Steps/s of the second epoch through the public `fit` (the first one traces)."""
    tf.random.set_seed(0)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = mlp((256, 128), 10)
        model.build((None,) + x.shape[1:])
        optimizer = optimizers.SGD(0.01)
    arguments = (model, losses.sparse_categorical_crossentropy, optimizer, "graph", STEPS_PER_EXECUTION)
    trainer = DistributedTrainer(strategy, *arguments) if strategy else Trainer(*arguments)
    trainer.fit(x, y, epochs=1, batch_size=batch_size)
    start = time.perf_counter()
    trainer.fit(x, y, epochs=1, batch_size=batch_size)
    trainer.train_loss.result().numpy()
    return -(-len(y) // batch_size) / (time.perf_counter() - start)


def measure(examples: int, batch_size: int) -> dict:
    devices = replica_devices()
    rng = np.random.default_rng(0)
    x = rng.random((examples, 28, 28), dtype=np.float32)  # speed does not depend on the pixels
    y = rng.integers(0, 10, examples).astype(np.int32)
    rows = []
    for name, strategy in (("one device, no strategy", None),
                           ("mirrored, 1 replica", tf.distribute.MirroredStrategy(devices[:1])),
                           ("mirrored, 2 replicas", tf.distribute.MirroredStrategy(devices))):
        rate = steady_steps_per_second(strategy, x, y, batch_size)
        rows.append({"setting": name, "replicas": strategy.num_replicas_in_sync if strategy else 1,
                     "steps_per_second": rate, "samples_per_second": rate * batch_size})
    for row in rows:
        row["vs_one_device"] = row["steps_per_second"] / rows[0]["steps_per_second"]
    return {"devices": devices, "logical_cpu": devices[0].startswith("/device:CPU"), "batch_size": batch_size,
            "examples": examples, "steps_per_execution": STEPS_PER_EXECUTION, "mode": "graph", "rows": rows}


def in_subprocess(examples: int, timeout: float = 900.0) -> dict:
    """`measure` in a fresh Python process (whose CPU can still be split); its JSON result."""
    run = subprocess.run([sys.executable, "-m", "bench.scaling", f"--examples={examples}"], capture_output=True,
                         text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if run.returncode != 0:
        raise RuntimeError(f"python -m bench.scaling failed (status {run.returncode}): {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure_and_print() -> int:
    """Measures and prints the result as one JSON line; returns the exit status."""
    tf.get_logger().setLevel("ERROR")
    print(json.dumps(measure(FLAGS.examples, FLAGS.batch_size)), flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, measure_and_print)


if __name__ == "__main__":
    sys.exit(main())

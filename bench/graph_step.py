"""The graph step on oneDNN: what relu on TensorFlow's kernel and the data set in bfloat16 save.

    python -m bench.graph_step [--batch_size=1024] [--rounds=7] [--calls=3]

In graph mode TensorFlow runs the step's matmuls on its own MatMul (oneDNN: AMX or AVX512_BF16
for bfloat16), and every other op as a kernel of its own, each a pass over memory. Two choices
of the engine take passes away there (bench/RESULTS.md, "The graph step on oneDNN"):

- `engine.activations.relu` is `tf.nn.relu`, which TensorFlow's graph optimizer folds into the
  matmul before it (one fused oneDNN kernel) and differentiates in one op, where the written-out
  `relu_formula` (`tf.where(z > 0, z, 0)`) costs Greater, ZerosLike and SelectV2 each way.
- `engine.execution.data_dtype`: a bfloat16 model's data set is held in bfloat16, so each step
  gathers half the bytes and casts nothing.

This experiment trains the reference model in graph mode, K=64, with each choice undone in turn:
fresh models, the same batches, each variant timed once per round in interleaved rounds (the
machine's drift falls on all alike), the median reported with its range and its ratio to the
engine as it was before both choices (the formula and float32 data). XLA's step is timed beside
them for scale: XLA fuses element-wise ops itself, so neither choice is for it (and XLA gathers
bfloat16 rows more slowly than float32 ones, which the last variant shows).
"""

import statistics
import sys
import time
from typing import Optional, Sequence

from absl import flags

from engine.run import cli, program

PROGRAM = "python -m bench.graph_step"
FLAGS = cli.new_flag_values()
flags.DEFINE_integer("batch_size", 1024, "Batch size of every variant.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("calls", 3, "K-step calls per timing (K=64 steps each).", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("rounds", 7, "Interleaved rounds; the median is reported.", lower_bound=1, flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

from engine import startup  # noqa: E402

tf = startup.import_tensorflow()

from bench import workloads  # noqa: E402
from engine import activations, losses, optimizers  # noqa: E402
from engine.training import Trainer  # noqa: E402
from layers import mlp  # noqa: E402

K = 64


class Float32DataTrainer(Trainer):
    """A `Trainer` that holds the data set in float32 whatever its model computes in: graph mode as it
    was before `execution.data_dtype`."""

    @property
    def data_dtype(self) -> tf.DType:
        return tf.float32


class Bfloat16DataTrainer(Trainer):
    """A `Trainer` that holds the data set in bfloat16 in every mode: what `execution.data_dtype` spares XLA."""

    @property
    def data_dtype(self) -> tf.DType:
        return tf.bfloat16


# name: (mode, policy, relu, trainer class); the first of each policy is the engine before both choices.
VARIANTS = {
    "float32 graph, relu_formula": ("graph", "float32", activations.relu_formula, Trainer),
    "float32 graph, relu (engine)": ("graph", "float32", activations.relu, Trainer),
    "float32 xla": ("xla", "float32", activations.relu, Trainer),
    "bfloat16 graph, relu_formula, float32 data": ("graph", "mixed_bfloat16", activations.relu_formula,
                                                   Float32DataTrainer),
    "bfloat16 graph, relu, float32 data": ("graph", "mixed_bfloat16", activations.relu, Float32DataTrainer),
    "bfloat16 graph, relu_formula, bfloat16 data": ("graph", "mixed_bfloat16", activations.relu_formula, Trainer),
    "bfloat16 graph, relu, bfloat16 data (engine)": ("graph", "mixed_bfloat16", activations.relu, Trainer),
    "bfloat16 xla (float32 data)": ("xla", "mixed_bfloat16", activations.relu, Trainer),
    "bfloat16 xla, bfloat16 data": ("xla", "mixed_bfloat16", activations.relu, Bfloat16DataTrainer),
}


def runner(mode: str, policy: str, relu, trainer_class, fashion, batch_size: int) -> workloads.EngineSteps:
    """A fresh reference model (seed 0) in `policy` with `relu` for its hidden layers, and its step runner."""
    tf.random.set_seed(0)
    model = mlp(workloads.HIDDEN, 10, activation=relu, dtype=policy)
    model.build((None, 28, 28))
    trainer = trainer_class(model, losses.sparse_categorical_crossentropy,
                            optimizers.SGD(workloads.LEARNING_RATE), mode, K)
    return workloads.EngineSteps(trainer, fashion.train_images, fashion.train_labels, batch_size)


def time_variants() -> int:
    """Times every variant in interleaved rounds and prints the table; returns the exit status."""
    fashion = workloads.load_data()
    batch_size = FLAGS.batch_size
    runners = {name: runner(*variant, fashion, batch_size) for name, variant in VARIANTS.items()}
    print(f"reference model, batch {batch_size}, K={K}, {FLAGS.rounds} interleaved rounds of {FLAGS.calls} calls "
          f"({FLAGS.calls * K} steps) per variant", flush=True)
    for run in runners.values():
        run(1)  # trace and compile, untimed
    print(f"compiled {len(runners)} variants; timing, in the order of the table", flush=True)
    rates = {name: [] for name in runners}
    for round_ in range(FLAGS.rounds):
        names = list(runners)
        names = names[round_ % len(names):] + names[:round_ % len(names)]  # rotated: no fixed neighbours
        for name in names:
            start = time.perf_counter()
            runners[name](FLAGS.calls)  # ends on a read-back: every step has run
            rates[name].append(FLAGS.calls * K / (time.perf_counter() - start))
        print(f"round {round_ + 1}/{FLAGS.rounds}: " + ", ".join(f"{rates[name][-1]:,.0f}" for name in runners)
              + " steps/s", flush=True)
    print("| variant | steps/s (median, range) | x the same policy before both choices |\n|---|---:|---:|")
    base = {}
    for name, (_, policy, _, _) in VARIANTS.items():
        rate = statistics.median(rates[name])
        base.setdefault(policy, rate)
        print(f"| {name} | {rate:,.0f} ({min(rates[name]):,.0f}-{max(rates[name]):,.0f}) | "
              f"{rate / base[policy]:.2f} |", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, time_variants)


if __name__ == "__main__":
    sys.exit(main())

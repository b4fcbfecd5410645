"""What a one-step compiled call costs beyond its step: tf.function's dispatch, and the K-step loop.

    python -m bench.dispatch [--calls=300] [--rounds=7]

The engine calls the traced `ConcreteFunction` of its step (`execution.compile_step`) and, at one
step per call, runs the step without the `tf.range` loop (`execution.run_one_step`). This
experiment measures both choices against the alternatives, on the reference model at batch 32,
in graph and XLA modes: the same train step wrapped four ways, timed in interleaved rounds
(so that the machine's drift hits all four alike), the median of the rounds reported.
"""

import functools
import statistics
import sys
import time
from typing import Optional, Sequence

from absl import flags

from engine.run import cli, program

PROGRAM = "python -m bench.dispatch"
FLAGS = cli.new_flag_values()
flags.DEFINE_integer("calls", 300, "Calls (= steps) per timed round.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("rounds", 7, "Interleaved rounds; the median is reported.", lower_bound=1, flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

from engine import startup  # noqa: E402

tf = startup.import_tensorflow()

from bench import workloads  # noqa: E402
from engine import execution, training  # noqa: E402

WRAPPINGS = ("tf.function, loop", "tf.function, no loop", "concrete, loop", "concrete, no loop (engine)")


def wrapped_steps(mode: str, images: tf.Tensor) -> dict:
    """The reference train step of a fresh model, compiled for `mode` in each of the four WRAPPINGS."""
    trainer = workloads.engine_trainer(workloads.SETTINGS[f"{mode}-K1"])
    trainer.build((None,) + tuple(images.shape[1:]))  # the model's weights and the optimizer's state
    step = functools.partial(training.train_step, trainer.model, trainer.loss_fn, trainer.optimizer,
                             trainer.train_loss, trainer.train_metrics)
    signature = (tf.TensorSpec((None, 28, 28), tf.float32), tf.TensorSpec((None,), tf.int32),
                 tf.TensorSpec((None, None), tf.int32))
    functions = {}
    for loop, runner in (("loop", execution.run_steps), ("no loop", execution.run_one_step)):
        function = tf.function(functools.partial(runner, step), input_signature=signature, jit_compile=mode == "xla")
        functions[f"tf.function, {loop}"] = function
        functions[f"concrete, {loop}{' (engine)' if loop == 'no loop' else ''}"] = function.get_concrete_function()
    return functions


def time_wrappings() -> int:
    """Times the four wrappings in both modes; returns the exit status."""
    fashion = workloads.load_data()
    images, labels = tf.constant(fashion.train_images), tf.constant(fashion.train_labels, tf.int32)
    blocks = workloads.steady_blocks(len(fashion.train_labels), workloads.BATCH_SIZE, 1)
    functions = {(mode, name): function for mode in ("graph", "xla")
                 for name, function in wrapped_steps(mode, images).items()}
    rates = {key: [] for key in functions}
    for function in functions.values():  # trace and compile, untimed
        function(images, labels, tf.constant(next(blocks))).numpy()
    for _ in range(FLAGS.rounds):
        for key, function in functions.items():
            start = time.perf_counter()
            for _ in range(FLAGS.calls):
                losses = function(images, labels, tf.constant(next(blocks)))
            losses.numpy()
            rates[key].append(FLAGS.calls / (time.perf_counter() - start))
    result = {}
    for mode in ("graph", "xla"):
        base = statistics.median(rates[mode, WRAPPINGS[0]])
        for name in WRAPPINGS:
            rate = statistics.median(rates[mode, name])
            result[f"{mode}: {name}"] = rate
            print(f"{mode:<5} {name:<28} {rate:7.1f} steps/s  x{rate / base:.2f}", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, time_wrappings)


if __name__ == "__main__":
    sys.exit(main())

"""What a training step costs beyond its matmuls: the real step beside its chained bound, in one process.

    python -m bench.step_gap                         # TensorFlow: the engine's step, its parts, the bound
    python -m bench.step_gap --framework=jax         # JAX/Flax's scan step beside JAX's bound (the peers extra)

`bench/kernels.py` measures each framework's chained matmul-only bound (bench/matmul_step.py) in
processes of its own, minutes away from the peers' full steps: this machine's drift between them
is as large as the gap in question. Here the step and its bound run in the same process, in
interleaved rounds, so their ratio is measured, not inferred. At each batch size B, one K-step
compiled call per timing (K = min(64, 60,000 // B)), on Fashion-MNIST's training images:

    TensorFlow (XLA, as the engine's default below batch 4096):
      engine step              `Trainer`'s compiled call: gather, forward, softmax + cross-entropy,
                               tape gradients, SGD, loss and accuracy metrics
      engine, no accuracy      the same without the accuracy metric
      engine, manual backward  the same with the backward pass written out (engine/gradients.py)
      skeleton                 `bench/ceiling.py`: gather, the eight matmuls, squared error, SGD
      chain + gather           the chained bound with each batch gathered from the data set
      chain                    the chained bound (each batch a slice of a stacked array)
    JAX: Flax's scan step (bench/peer_jax.py's `scan` mode), and JAX's chain.

Each is printed as steps/s and as a fraction of the chain's, the median of the rounds.
"""

import statistics
import sys
import time
from typing import Callable, Dict, Optional, Sequence

from absl import flags

from engine.errors import ConfigError
from engine.run import cli, program

PROGRAM = "python -m bench.step_gap"
FLAGS = cli.new_flag_values()
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Batch sizes to measure.", flag_values=FLAGS)
flags.DEFINE_enum("framework", "tensorflow", ["tensorflow", "jax"], "Whose step and bound.", flag_values=FLAGS)
flags.DEFINE_integer("rounds", 9, "Interleaved rounds; the median is reported.", lower_bound=1, flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

EXAMPLES = 60000  # Fashion-MNIST's training set
REFERENCE_SIZES = (784, 256, 128, 10)


def steps_per_call(batch_size: int) -> int:
    return max(1, min(64, EXAMPLES // batch_size))


def tensorflow_runs(batch_size: int, k: int) -> Dict[str, Callable[[], None]]:
    """The TensorFlow variants of the module docstring, each one compiled K-step call."""
    import numpy as np

    from engine import startup

    tf = startup.import_tensorflow()
    from bench import ceiling, matmul_step, workloads
    from engine import losses, optimizers
    from engine.training import Trainer
    from layers import mlp

    data = workloads.load_data()
    x, y = data.train_images, data.train_labels
    order = np.random.default_rng(0).permutation(len(y))[:k * batch_size].reshape(k, batch_size).astype(np.int32)
    block = tf.constant(order)

    def engine(**options) -> Callable[[], None]:
        model = mlp(workloads.HIDDEN, 10)
        model.build((None, 28, 28))
        trainer = Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(workloads.LEARNING_RATE),
                          "xla", k, **options)
        call = trainer.make_train_function(x, y, batch_size)
        images, labels = trainer.as_tensors(x, y, batch_size)
        return lambda: call(images, labels, block).numpy()

    skeleton = ceiling.SkeletonSteps("xla", k, x, y, batch_size=batch_size)
    stacked, kernels = matmul_step.operands(batch_size, REFERENCE_SIZES, k)
    weights = [tf.constant(w) for w in kernels]
    chain, stacked = matmul_step.tensorflow_loop(tf, jit=True), tf.constant(stacked)
    gathered, flat = matmul_step.tensorflow_gathered_loop(tf), tf.constant(x.reshape(len(y), -1))
    return {"engine step": engine(), "engine, no accuracy": engine(metrics=[]),
            "engine, manual backward": engine(gradients="manual"), "skeleton": lambda: skeleton(1),
            "chain + gather": lambda: gathered(flat, block, *weights)[0].numpy(),
            "chain": lambda: chain(stacked, *weights)[0].numpy()}


def jax_runs(batch_size: int, k: int) -> Dict[str, Callable[[], None]]:
    """Flax's scan step and JAX's chain, each one compiled K-step call."""
    import importlib.util

    if importlib.util.find_spec("flax") is None:
        raise ConfigError("--framework=jax needs JAX and Flax: pip install -e '.[peers]'")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bench import matmul_step, peer_jax, peer_settings, peer_worker

    data = peer_worker.fashion_mnist()
    setting = {"mode": "scan", "steps_per_execution": k, "precision": "float32"}
    runner = peer_jax.Runner(setting, batch_size, peer_settings.initial_weights(), data)
    order = np.random.default_rng(0).permutation(EXAMPLES)[:k * batch_size].reshape(k, batch_size).astype(np.int32)
    stacked, kernels = matmul_step.operands(batch_size, REFERENCE_SIZES, k)
    chain, arguments = matmul_step.jax_loop(jax, jnp), [jnp.asarray(stacked), *map(jnp.asarray, kernels)]
    return {"flax scan step": lambda: runner.train(order),
            "chain": lambda: chain(*arguments)[0].block_until_ready()}


def measure(runs: Dict[str, Callable[[], None]], k: int, rounds: int) -> Dict[str, float]:
    """Median steps/s of each run over `rounds` interleaved rounds, after two untimed calls each."""
    for run in runs.values():
        run()
        run()
    rates: Dict[str, list] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            rates[name].append(k / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def step_gap() -> int:
    """The experiment the parsed FLAGS describe; returns the exit status."""
    try:
        batch_sizes = [int(size) for size in FLAGS.batch_sizes]
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1 or max(batch_sizes) > EXAMPLES:
        raise ConfigError(f"--batch_sizes got {','.join(FLAGS.batch_sizes)}: expected integers from 1 to "
                          f"{EXAMPLES:,}, comma-separated")
    builder = tensorflow_runs if FLAGS.framework == "tensorflow" else jax_runs
    for batch_size in batch_sizes:
        k = steps_per_call(batch_size)
        print(f"batch {batch_size}, {k} steps per call, {FLAGS.rounds} interleaved rounds:", flush=True)
        rates = measure(builder(batch_size, k), k, FLAGS.rounds)
        for name, rate in rates.items():
            print(f"  {name:<24} {rate:9.1f} steps/s  {rate / rates['chain']:.2f} of the chain", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, step_gap)


if __name__ == "__main__":
    sys.exit(main())

"""Train the MLP from the command line.

    python train.py --dataset=fashion_mnist --epochs=30

This file only turns flags into an `engine.run.job.TrainConfig` and calls `engine.run.job.run`;
the engine never reads flags. A problem the user can fix (a bad flag, missing or broken
data, an unwritable output directory) is printed as one line, with exit status 2.
"""

import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, or another TFDS image-classification dataset. "
                    "Offline, the default mnist falls back to Fashion-MNIST when that is installed (announced).")
flags.DEFINE_string("data_dir", None, "Directory holding the four IDX files (train-images-idx3-ubyte.gz, ...).")
flags.DEFINE_string("tfds_dir", None, "TensorFlow Datasets data directory (default ~/tensorflow_datasets).")
flags.DEFINE_integer("epochs", 30, "Passes over the training set.")
flags.DEFINE_integer("batch_size", 32, "Examples per step; the last partial batch is kept.")
flags.DEFINE_list("hidden", ["256", "128"], "Hidden layer sizes, comma-separated.")
flags.DEFINE_float("learning_rate", 0.01, "SGD learning rate.")
flags.DEFINE_float("momentum", 0.0, "SGD momentum, in [0, 1).")
flags.DEFINE_boolean("nesterov", False, "Use Nesterov momentum.")
flags.DEFINE_integer("seed", 0, "Seed for weights and per-epoch shuffling.")
flags.DEFINE_string("mode", "xla", "Execution mode: eager, graph (tf.function) or xla (jit_compile=True).")
flags.DEFINE_integer("steps_per_execution", 64, "Training steps run inside one compiled call (graph and xla modes).")
flags.DEFINE_string("device", "auto", "auto (TPU, else GPU, else CPU), cpu, gpu or tpu.")
flags.DEFINE_boolean("validate_on_test", True, "Evaluate the test set after every epoch (monitoring only).")
flags.DEFINE_string("output_dir", "runs/train", "Where history.json and metrics.png are written.")
flags.DEFINE_boolean("compare_keras", False, "Train the engine and tf.keras side by side from the same weights on "
                     "the same batches; print a per-epoch table, write parity.json and parity.png.")
flags.DEFINE_string("tensorboard_dir", None, "Write TensorBoard scalars and weight histograms per epoch here.")
flags.DEFINE_integer("early_stopping_patience", 0, "Stop after this many epochs without improvement of the "
                     "monitored validation metric, and restore the best weights; 0 is off.")
flags.DEFINE_float("early_stopping_min_delta", 0.0, "Smallest change of the monitored metric that counts as improvement.")
flags.DEFINE_string("early_stopping_monitor", "val_loss", "val_loss (lower is better) or val_accuracy (higher is better).")
flags.DEFINE_float("validation_split", 0.0, "Hold out this last fraction of the training set for validation "
                   "(instead of the test set); 0 is off.")
flags.DEFINE_string("export_dir", None, "After training, write a SavedModel, a .tflite and labels.txt here.")
flags.DEFINE_integer("checkpoint_every", 0, "Also write a checkpoint every this many steps (0: only at the end of "
                     "every epoch, which is always done), into OUTPUT_DIR/checkpoints.")
flags.DEFINE_boolean("resume", True, "Continue from the newest checkpoint in OUTPUT_DIR/checkpoints when there is one "
                     "(said at start-up); --noresume starts over (they are deleted at its first checkpoint).")
flags.DEFINE_string("resume_from", None, "Resume from this checkpoint (a path prefix like OUTPUT_DIR/checkpoints/ckpt-3).")
flags.DEFINE_float("divergence_factor", 100.0, "Stop when a loss exceeds this times the run's first step's loss.")
flags.DEFINE_boolean("deterministic", None, "Op determinism and seeded generators: the same flags give the same "
                     "numbers. Default: on when the run lands on the CPU.")
flags.DEFINE_string("strategy", "none", "tf.distribute strategy: none, mirrored (every local GPU, or the logical CPU "
                    "devices of --cpu_devices), multi_worker (the workers TF_CONFIG names) or tpu.")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (0: don't), so "
                     "--strategy=mirrored has replicas on a machine without GPUs. They share the same cores.")
flags.DEFINE_float("collective_timeout", 60.0, "Seconds a multi-worker all-reduce waits for its peers before "
                   "the run stops with an error (a worker died or hangs).")


def config_from_flags():
    """Builds the frozen TrainConfig from FLAGS; raises ConfigError for a bad value."""
    from engine.run.config import TrainConfig
    from engine.errors import ConfigError

    try:
        hidden = tuple(int(size) for size in FLAGS.hidden)
    except ValueError:
        raise ConfigError(f"--hidden must be a comma-separated list of positive integers like 256,128, "
                          f"got {','.join(FLAGS.hidden)}") from None
    return TrainConfig(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, tfds_dir=FLAGS.tfds_dir,
        # An explicit --dataset=mnist is never swapped for another data set; the default may be.
        fallback_dataset=None if FLAGS["dataset"].present else "fashion_mnist",
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, hidden=hidden,
        learning_rate=FLAGS.learning_rate, momentum=FLAGS.momentum, nesterov=FLAGS.nesterov,
        seed=FLAGS.seed, mode=FLAGS.mode, steps_per_execution=FLAGS.steps_per_execution, device=FLAGS.device,
        validate_on_test=FLAGS.validate_on_test,
        output_dir=FLAGS.output_dir, checkpoint_every=FLAGS.checkpoint_every, resume=FLAGS.resume,
        resume_from=FLAGS.resume_from, divergence_factor=FLAGS.divergence_factor,
        deterministic=FLAGS.deterministic,
        tensorboard_dir=FLAGS.tensorboard_dir, early_stopping_patience=FLAGS.early_stopping_patience,
        early_stopping_min_delta=FLAGS.early_stopping_min_delta, early_stopping_monitor=FLAGS.early_stopping_monitor,
        validation_split=FLAGS.validation_split, export_dir=FLAGS.export_dir,
        strategy=FLAGS.strategy, cpu_devices=FLAGS.cpu_devices, collective_timeout=FLAGS.collective_timeout)


def resume_command() -> str:
    """This very command, minus any --resume/--noresume: resuming is the default."""
    kept = [arg for arg in sys.argv[1:] if not arg.lstrip("-").startswith(("resume", "noresume"))]
    return shlex.join(["python", sys.argv[0], *kept])


def main(argv):
    if len(argv) > 1:
        print(f"train.py: error: unexpected arguments {argv[1:]}: every option is a --flag", file=sys.stderr)
        return 2
    from engine.run.config import check_directories
    from engine.errors import ClusterError, ConfigError, DataError
    from engine.run.faults import RunFault, one_line
    from engine.run.interrupts import Interrupted, RememberedSigint

    sigint = RememberedSigint()
    try:
        config = config_from_flags()
        check_directories(config)
        print_line = lambda line: print(line, flush=True)  # noqa: E731
        # TensorFlow is imported only here, once the flags are known to be good.
        if FLAGS.compare_keras:
            from engine.compare import side_by_side
            side_by_side.compare_with_keras(config, print_fn=print_line)
        else:
            from engine.run import job
            sigint.check()  # a Ctrl-C that TensorFlow's import swallowed
            job.run(config, print_fn=print_line)
    except (ConfigError, DataError) as error:
        print(f"train.py: error: {one_line(error)}", file=sys.stderr)
        return 2
    except RunFault as fault:
        print(f"train.py: error: {one_line(fault)}", file=sys.stderr)
        return 1
    except Interrupted as stop:
        print(f"train.py: {stop}. To resume: {resume_command()}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:  # Ctrl-C while TensorFlow or the engine is still being imported
        print("train.py: stopped by SIGINT before training began; nothing written", file=sys.stderr)
        return 130
    except ClusterError as error:  # not the user's input: a peer worker died
        print(f"train.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        app.run(main)
    except KeyboardInterrupt:  # a Ctrl-C before main's own handling (absl's start-up, TensorFlow's exit)
        print("train.py: stopped by SIGINT", file=sys.stderr)
        sys.exit(130)

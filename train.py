"""Train the MLP from the command line.

    python train.py --dataset=fashion_mnist --epochs=30

This file only turns flags into an `engine.run.config.TrainConfig`, settles it
(`engine.app.preflight`) and calls `engine.app.job.start`;
the engine never reads flags. A problem the user can fix (a bad flag, missing or broken
data, an unwritable output directory) is printed as one line, with exit status 2.
"""

import shlex
import sys
from typing import Sequence

from absl import flags

from engine.run import cli, program
from engine.run.config import DEVICES, EARLY_STOPPING_MONITORS, GRADIENTS, OPTIMIZER_FLAGS, STRATEGIES

PROGRAM = "train.py"
FLAGS = cli.new_flag_values()
cli.define_data(FLAGS, "fashion_mnist", " fashion_mnist is read from Debian's package, offline.")
flags.DEFINE_integer("epochs", 30, "Passes over the training set.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 32, "Examples per step; the last partial batch is kept.", lower_bound=1,
                     flag_values=FLAGS)
cli.define_hidden(FLAGS, "256,128", "Hidden layer sizes, comma-separated.")
flags.DEFINE_enum("optimizer", "sgd", tuple(OPTIMIZER_FLAGS), "The optimizer (engine/optimizers/): sgd, adam, "
                  "adamw or rmsprop, Keras's update rules; the flags below it does not take are refused.",
                  flag_values=FLAGS)
flags.DEFINE_float("learning_rate", 0.01, "The learning rate, > 0 (Keras's default for adam, adamw and rmsprop "
                   "is 0.001).", flag_values=FLAGS)
flags.DEFINE_float("momentum", 0.0, "SGD's or RMSprop's momentum, in [0, 1).", flag_values=FLAGS)
flags.DEFINE_boolean("nesterov", False, "SGD: use Nesterov momentum.", flag_values=FLAGS)
flags.DEFINE_float("beta_1", None, "Adam/AdamW: decay of the first-moment (mean gradient) estimate, in [0, 1); "
                   "default 0.9.", flag_values=FLAGS)
flags.DEFINE_float("beta_2", None, "Adam/AdamW: decay of the second-moment (mean squared gradient) estimate, "
                   "in [0, 1); default 0.999.", flag_values=FLAGS)
flags.DEFINE_float("epsilon", None, "Adam/AdamW/RMSprop: added to the root of the second moment, > 0; "
                   "default 1e-7.", flag_values=FLAGS)
flags.DEFINE_float("weight_decay", None, "Decoupled weight decay, w <- w - lr * weight_decay * w each step, "
                   ">= 0; default none (AdamW: 0.004).", flag_values=FLAGS)
flags.DEFINE_float("rho", None, "RMSprop: decay of the mean squared gradient, in [0, 1); default 0.9.",
                   flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed for weights and per-epoch shuffling.", flag_values=FLAGS)
cli.define_mode(FLAGS, "xla")
flags.DEFINE_integer("steps_per_execution", 64, "Training steps run inside one compiled call (graph and xla modes).",
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_enum("gradients", "tape", GRADIENTS, "How each step's gradients are computed: tape "
                  "(tf.GradientTape) or manual (each layer's backward rule, written out beside its forward).",
                  flag_values=FLAGS)
flags.DEFINE_enum("device", "auto", DEVICES, "auto (TPU, else GPU, else CPU), cpu, gpu or tpu.", flag_values=FLAGS)
flags.DEFINE_boolean("validate_on_test", True, "Evaluate the test set after every epoch (monitoring only).",
                     flag_values=FLAGS)
flags.DEFINE_string("output_dir", "runs/train", "Where history.json and metrics.png are written.", flag_values=FLAGS)
flags.DEFINE_boolean("compare_keras", False, "Train the engine and tf.keras side by side from the same weights on "
                     "the same batches; print a per-epoch table, write parity.json and parity.png.", flag_values=FLAGS)
flags.DEFINE_string("tensorboard_dir", None, "Write TensorBoard scalars and weight histograms per epoch here.",
                    flag_values=FLAGS)
flags.DEFINE_integer("early_stopping_patience", 0, "Stop after this many epochs without improvement of the "
                     "monitored validation metric, and restore the best weights; 0 is off.", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_float("early_stopping_min_delta", 0.0, "Smallest change of the monitored metric that counts as "
                   "improvement.", lower_bound=0.0, flag_values=FLAGS)
flags.DEFINE_enum("early_stopping_monitor", "val_loss", EARLY_STOPPING_MONITORS,
                  "val_loss (lower is better) or val_accuracy (higher is better).", flag_values=FLAGS)
flags.DEFINE_float("validation_split", 0.0, "Hold out this last fraction of the training set for validation "
                   "(instead of the test set), in [0, 1); 0 is off.", flag_values=FLAGS)
flags.DEFINE_string("export_dir", None, "After training, write a SavedModel, a .tflite and labels.txt here.",
                    flag_values=FLAGS)
flags.DEFINE_integer("checkpoint_every", 0, "Also write a checkpoint every this many steps (0: only at the end of "
                     "every epoch, which is always done), into OUTPUT_DIR/checkpoints.", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_boolean("resume", True, "Continue from the newest checkpoint in OUTPUT_DIR/checkpoints when there is one "
                     "(said at start-up); --noresume starts over (they are deleted at its first checkpoint).",
                     flag_values=FLAGS)
flags.DEFINE_string("resume_from", None, "Resume from this checkpoint (a path prefix like OUTPUT_DIR/checkpoints/ckpt-3).",
                    flag_values=FLAGS)
flags.DEFINE_float("divergence_factor", 100.0, "Stop when a loss exceeds this times the run's first step's loss.",
                   flag_values=FLAGS)
flags.DEFINE_boolean("deterministic", None, "Op determinism and seeded generators: the same flags give the same "
                     "numbers. Default: on when the run lands on the CPU.", flag_values=FLAGS)
flags.DEFINE_enum("strategy", "none", STRATEGIES, "tf.distribute strategy: none, mirrored (every local GPU, or the "
                  "logical CPU devices of --cpu_devices), multi_worker (the workers TF_CONFIG names) or tpu.",
                  flag_values=FLAGS)
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (0: don't), so "
                     "--strategy=mirrored has replicas on a machine without GPUs. They share the same cores.",
                     lower_bound=0, flag_values=FLAGS)
flags.DEFINE_float("collective_timeout", 60.0, "Seconds a multi-worker all-reduce waits for its peers before "
                   "the run stops with an error (a worker died or hangs).", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def config_from_flags():
    """Builds the frozen TrainConfig from the parsed FLAGS; raises ConfigError for a bad value."""
    from engine.run.config import TrainConfig

    return TrainConfig(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, tfds_dir=FLAGS.tfds_dir,
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, hidden=FLAGS.hidden,
        learning_rate=FLAGS.learning_rate, momentum=FLAGS.momentum, nesterov=FLAGS.nesterov,
        optimizer=FLAGS.optimizer, beta_1=FLAGS.beta_1, beta_2=FLAGS.beta_2, epsilon=FLAGS.epsilon,
        weight_decay=FLAGS.weight_decay, rho=FLAGS.rho,
        seed=FLAGS.seed, mode=FLAGS.mode, steps_per_execution=FLAGS.steps_per_execution, gradients=FLAGS.gradients,
        device=FLAGS.device,
        validate_on_test=FLAGS.validate_on_test,
        output_dir=FLAGS.output_dir, checkpoint_every=FLAGS.checkpoint_every, resume=FLAGS.resume,
        resume_from=FLAGS.resume_from, divergence_factor=FLAGS.divergence_factor,
        deterministic=FLAGS.deterministic,
        tensorboard_dir=FLAGS.tensorboard_dir, early_stopping_patience=FLAGS.early_stopping_patience,
        early_stopping_min_delta=FLAGS.early_stopping_min_delta, early_stopping_monitor=FLAGS.early_stopping_monitor,
        validation_split=FLAGS.validation_split, export_dir=FLAGS.export_dir,
        strategy=FLAGS.strategy, cpu_devices=FLAGS.cpu_devices, collective_timeout=FLAGS.collective_timeout)


def resume_command(argv: Sequence[str]) -> str:
    """This very command, minus any --resume/--noresume: resuming is the default.

    An argument holding a newline or another control character is written as bash's $'...',
    so the command stays one line that a shell runs as it was.
    """
    kept = [arg for arg in argv[1:] if not arg.lstrip("-").startswith(("resume", "noresume"))]
    return " ".join(_quoted(arg) for arg in ["python", argv[0], *kept])


def _quoted(arg: str) -> str:
    if arg.isprintable():
        return shlex.quote(arg)
    escaped = "".join(char if char.isprintable() and char not in "\\'" else
                      char.encode("unicode_escape").decode("ascii") if not char.isprintable() else "\\" + char
                      for char in arg)
    return f"$'{escaped}'"


def train() -> int:
    """The run the parsed FLAGS describe: checked, then trained (or compared with Keras); returns 0."""
    from engine.app import preflight
    from engine.run import interrupts, quiet

    config = preflight.settle(config_from_flags())
    print_line = lambda line: print(line, flush=True)  # noqa: E731
    # TensorFlow is imported only here, once the flags are known to be good.
    quiet.import_tensorflow()
    interrupts.check_pending()  # a Ctrl-C that TensorFlow's import swallowed
    if FLAGS.compare_keras:
        from engine.app import side_by_side
        side_by_side.compare_with_keras(config, print_fn=print_line)
    else:
        from engine.app import job
        job.start(config, print_fn=print_line)
    return 0


def main(argv: Sequence[str]) -> int:
    """Parses `argv` (argv[0] is the program), runs the job; returns the exit status (README lists them)."""
    return program.run(PROGRAM, FLAGS, argv, train, stop_hint=f"To resume: {resume_command(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))

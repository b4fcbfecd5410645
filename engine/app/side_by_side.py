"""`train.py --compare_keras`: the engine and tf.keras trained side by side, printed as a table.

The job around `parity.compare`: load the data as a training run does, say what is being compared
and when each engine epoch is trained (the engine trains all epochs before Keras starts, so the
first row comes late), print one row per epoch as Keras finishes it, then the summary; write
parity.json and parity.png. Kept out of `engine.app.job` so that a plain training run never
imports Keras.
"""

import os
from typing import Callable

from engine.app import preflight
from engine.app.defaults import resolved, with_steps_per_call
from engine.app.job import announce_device, load_data
from engine.compare import parity
from engine.run import directories, files, plots
from engine.run.config import TrainConfig


def compare_with_keras(config: TrainConfig, print_fn: Callable[[str], None] = print) -> parity.ParityReport:
    """Trains the engine and tf.keras side by side (engine/compare/parity.py); writes parity.json and parity.png.

    `config` is as `preflight.settle` returned it: its directories are checked, and the output
    directory is created only when there is something to write."""
    config, device = resolved(config)
    preflight.check_comparison(config)  # train.py checked it before TensorFlow; a library caller too
    announce_device(config, print_fn, device)
    with files.claim(config.output_dir):  # another run, or comparison, writing here is refused
        return _compare(config, print_fn)


def _compare(config: TrainConfig, print_fn: Callable[[str], None]) -> parity.ParityReport:
    dataset = load_data(config, print_fn)
    config = with_steps_per_call(config, dataset.image_shape, dataset.num_classes, print_fn)
    arguments = config.optimizer_arguments()
    setup = parity.ParitySetup(hidden=config.hidden, learning_rate=arguments.pop("learning_rate"),
                               momentum=arguments.pop("momentum", 0.0), nesterov=arguments.pop("nesterov", False),
                               optimizer=config.optimizer, optimizer_args=tuple(sorted(arguments.items())),
                               batch_size=config.batch_size, epochs=config.epochs,
                               mode=config.mode, steps_per_execution=config.steps_per_execution, seed=config.seed,
                               gradients=config.gradients, shards=config.shards)
    header = (f"{'epoch':>5} | {'engine loss':>11} {'acc':>6} | {'keras loss':>10} {'acc':>6} | "
              f"{'|d loss|':>8} {'|d acc|':>7} | {'engine test acc':>15} {'keras test acc':>14} | {'engine s':>8} {'keras s':>7}")

    def print_row(row: dict) -> None:
        if row["epoch"] == 1:  # the table starts once the progress lines before it are done
            print_fn(header)
            print_fn("-" * len(header))
        print_fn(f"{row['epoch']:>5} | {row['engine_loss']:>11.4f} {row['engine_accuracy']:>6.4f} | "
                 f"{row['keras_loss']:>10.4f} {row['keras_accuracy']:>6.4f} | "
                 f"{abs(row['engine_loss'] - row['keras_loss']):>8.1e} "
                 f"{abs(row['engine_accuracy'] - row['keras_accuracy']):>7.1e} | "
                 f"{row['engine_test_accuracy']:>15.4f} {row['keras_test_accuracy']:>14.4f} | "
                 f"{row['engine_seconds']:>8.1f} {row['keras_seconds']:>7.1f}")

    report = parity.compare(setup, (dataset.train_images, dataset.train_labels),
                            (dataset.test_images, dataset.test_labels), on_epoch=print_row, progress=print_fn)
    for key, value in report.summary().items():
        print_fn(f"{key}: {describe(key, value, len(report.steps))}")
    directories.make_dirs(config.output_dir, "--output_dir")
    report.to_json(os.path.join(config.output_dir, "parity.json"))
    plots.plot_parity(report.epochs, os.path.join(config.output_dir, "parity.png"),
                      title=f"{dataset.name}: engine ({config.mode}) vs tf.keras fit, same weights and batches")
    print_fn(f"Wrote {config.output_dir}/parity.json and {config.output_dir}/parity.png")
    return report


def describe(key: str, value: float, recorded_steps: int) -> str:
    """A summary figure as printed; the first ReLU split is said in words, since 0 means none was found."""
    if key != "first_relu_split_step":
        return f"{value:.3g}"
    if not value:
        return f"none (no ReLU split in the first {recorded_steps} steps)"
    return f"{value} (the first step where a hidden unit is on in one model and off in the other)"

"""The main job, as a library call: load data, build the MLP, train, evaluate, write results.

`train.py` turns command-line flags into a `TrainConfig` and calls `run`; tests call `run`
directly. Nothing here reads flags, so every option is visible in the dataclass.
"""

import contextlib
import dataclasses
import json
import os
import shutil
from typing import Callable, Optional, Tuple

import tensorflow as tf

from engine import data, determinism, devices, distribute, export, losses, optimizers, parity, plots
from engine.callbacks import epoch_callbacks
from engine.checkpoints import Checkpointer, Position
from engine.config import TrainConfig, check_output_dir
from engine.distributed_training import DistributedTrainer
from engine.errors import ConfigError
from engine.interrupts import SignalStop
from engine.progress import ProgressBar
from engine.safeguards import Safeguards
from engine.training import Trainer
from engine.validation import hold_out
from layers import mlp


def write_json_atomically(payload: dict, path: str) -> None:
    """Writes via a temporary file and a rename, so a crash never leaves half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        json.dump(payload, file, indent=2)
    os.replace(temporary, path)


def load_data(config: TrainConfig, print_fn: Callable[[str], None]) -> data.ImageClassificationData:
    """Loads the configured data set and says what was loaded, and from where."""
    dataset = data.load(config.dataset, config.data_dir, config.tfds_dir,
                        fallback=config.fallback_dataset, log=print_fn)
    print_fn(f"Data: {dataset.name}, {len(dataset.train_labels):,} train / {len(dataset.test_labels):,} test "
             f"images of {dataset.image_shape} from {dataset.source}")
    return dataset


def announce_device(config: TrainConfig, print_fn: Callable[[str], None]) -> devices.Device:
    device = devices.select(config.device)
    steps = f", {config.steps_per_execution} steps per call" if config.mode != "eager" else ""
    print_fn(f"Device: {device.description} [{device.name}]; mode: {config.mode}{steps}")
    return device


def run(config: TrainConfig, print_fn: Callable[[str], None] = print) -> dict:
    """Runs the job described by `config`; returns what it writes to history.json."""
    check_output_dir(config.output_dir)
    if config.export_dir:
        export.check_export_dir(config.export_dir)
    if config.cpu_devices:
        distribute.split_cpu(config.cpu_devices)  # before any op runs
    device = announce_device(config, print_fn)
    deterministic = determinism.configure(config.deterministic, config.seed, device.kind)
    print_fn(f"Determinism: {'on (op determinism, seed ' + str(config.seed) + ')' if deterministic else 'off'}")
    strategy = distribute.create(config.strategy, device.kind, config.collective_timeout)
    print_fn(f"Strategy: {distribute.describe(strategy)}")
    config = dataclasses.replace(config, output_dir=distribute.worker_output_dir(strategy, config.output_dir))
    check_output_dir(config.output_dir)
    dataset = load_data(config, print_fn)
    with tf.device(device.name) if strategy is None else contextlib.nullcontext():  # a strategy places by itself
        return _train(config, dataset, print_fn, strategy)


def _train(config: TrainConfig, dataset: data.ImageClassificationData, print_fn: Callable[[str], None],
           strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    with strategy.scope() if strategy else contextlib.nullcontext():  # variables mirrored on every replica
        model = mlp(config.hidden, dataset.num_classes)
        model.build((None,) + tuple(dataset.image_shape))
        optimizer = optimizers.SGD(config.learning_rate, config.momentum, config.nesterov)
        optimizer.build(model.trainable_variables)  # slots exist before a checkpoint is restored into them
    model.summary(print_fn)
    arguments = (model, losses.sparse_categorical_crossentropy, optimizer, config.mode, config.steps_per_execution)
    trainer = DistributedTrainer(strategy, *arguments) if strategy else Trainer(*arguments)
    checkpointer, start = resume_or_start(config, dataset, trainer, print_fn)

    def report(logs: dict) -> None:
        validation = (f" - val_loss {logs['val_loss']:.4f} - val_accuracy {logs['val_accuracy']:.4f}"
                      if "val_loss" in logs else "")
        print_fn(f"Epoch {logs['epoch']}/{config.epochs} - loss {logs['loss']:.4f} - accuracy "
                 f"{logs['accuracy']:.4f}{validation} - {logs['seconds']:.1f}s - {logs['steps_per_second']:.1f} steps/s")

    train = (dataset.train_images, dataset.train_labels)
    held_out = (dataset.test_images, dataset.test_labels) if config.validate_on_test else None
    if config.validation_split:
        train, held_out = hold_out(*train, config.validation_split)
        print_fn(f"Validation: the last {len(held_out[1]):,} of {len(dataset.train_labels):,} training images "
                 f"(--validation_split={config.validation_split}); the test set is read once, at the end")
    callbacks, stopper = epoch_callbacks(config, trainer, report)
    epochs = config.epochs
    if start.history and start.history[-1].get("stopped_early"):
        print_fn(f"The checkpointed run already stopped early after epoch {start.history[-1]['epoch']}, holding its "
                 f"best weights: nothing left to train (--noresume starts over)")
        epochs = 0
    with SignalStop() as stop:
        guard = Safeguards(checkpointer, list(model.trainable_variables), start, config.checkpoint_every, stop)
        history = trainer.fit(*train, epochs, config.batch_size, validation_data=held_out, seed=config.seed,
                              on_epoch_end=callbacks, progress=ProgressBar(), guard=guard)
    if stopper is not None and stopper.best is not None:
        stopper.restore_best_weights()
        print_fn(stopper.summary())
    test = trainer.evaluate(dataset.test_images, dataset.test_labels, config.batch_size)
    print_fn(f"Test: loss {test['loss']:.4f} - accuracy {test['accuracy']:.4f}")
    if config.export_dir:
        saved_model, tflite = export.export(model, dataset.image_shape, dataset.class_names, config.export_dir)
        print_fn(f"Exported {saved_model} and {tflite}")

    results = {"config": {**dataclasses.asdict(config), "dataset_loaded": dataset.name,
                          "data_source": dataset.source},
               "epochs": history, "test": test}
    if stopper is not None and stopper.best is not None:
        results["early_stopping"] = {"stopped_epoch": stopper.stopped_epoch, "best_epoch": stopper.best_epoch,
                                     f"best_{config.early_stopping_monitor}": stopper.best}
    write_json_atomically(results, os.path.join(config.output_dir, "history.json"))
    plots.plot_history(history, os.path.join(config.output_dir, "metrics.png"),
                       title=f"{dataset.name} MLP {'-'.join(map(str, config.hidden))}, batch {config.batch_size}")
    print_fn(f"Wrote {config.output_dir}/history.json and {config.output_dir}/metrics.png")
    return results


def resume_or_start(config: TrainConfig, dataset: data.ImageClassificationData, trainer: Trainer,
                    print_fn: Callable[[str], None]) -> Tuple[Checkpointer, Position]:
    """Restores OUTPUT_DIR/checkpoints' newest checkpoint when there is one and `config.resume`.

    The checkpoint must be of the same run (the settings below); the learning rate may change
    (lowering it is the usual fix after a divergence), so it is set from `config` after restoring.
    """
    identity = {"dataset": dataset.name, "train_examples": len(dataset.train_labels),
                "image_shape": list(dataset.image_shape), "num_classes": dataset.num_classes,
                "hidden": list(config.hidden), "batch_size": config.batch_size, "momentum": config.momentum,
                "nesterov": config.nesterov, "seed": config.seed, "validation_split": config.validation_split}
    directory = os.path.join(config.output_dir, "checkpoints")
    checkpointer = Checkpointer(directory, trainer, identity)
    every = f" and every {config.checkpoint_every} steps" if config.checkpoint_every else ""
    print_fn(f"Checkpoints: {directory}, at every epoch's end{every}")
    if checkpointer.latest is None:
        return checkpointer, Position()
    if not config.resume:
        print_fn(f"--noresume: starting over; deleting the previous run's checkpoints in {directory}")
        shutil.rmtree(directory)
        return Checkpointer(directory, trainer, identity), Position()
    start = checkpointer.restore()
    trainer.optimizer.learning_rate.assign(config.learning_rate)
    print_fn(f"Resuming from {checkpointer.latest}: epoch {start.epoch}, {start.step} steps of it done, "
             f"{len(start.history)} epochs in the history (--noresume starts over)")
    return checkpointer, start


def compare_with_keras(config: TrainConfig, print_fn: Callable[[str], None] = print) -> parity.ParityReport:
    """Trains the engine and tf.keras side by side (engine/parity.py); writes parity.json and parity.png."""
    check_output_dir(config.output_dir)
    if config.strategy != "none":
        raise ConfigError(f"--compare_keras trains on one device; drop --strategy={config.strategy}")
    announce_device(config, print_fn)
    dataset = load_data(config, print_fn)
    setup = parity.ParitySetup(hidden=config.hidden, learning_rate=config.learning_rate, momentum=config.momentum,
                               nesterov=config.nesterov, batch_size=config.batch_size, epochs=config.epochs,
                               mode=config.mode, steps_per_execution=config.steps_per_execution, seed=config.seed)
    header = (f"{'epoch':>5} | {'engine loss':>11} {'acc':>6} | {'keras loss':>10} {'acc':>6} | "
              f"{'|d loss|':>8} {'|d acc|':>7} | {'engine test acc':>15} {'keras test acc':>14} | {'engine s':>8} {'keras s':>7}")
    print_fn(header)
    print_fn("-" * len(header))
    report = parity.compare(setup, (dataset.train_images, dataset.train_labels),
                            (dataset.test_images, dataset.test_labels), on_epoch=lambda row: print_fn(
        f"{row['epoch']:>5} | {row['engine_loss']:>11.4f} {row['engine_accuracy']:>6.4f} | "
        f"{row['keras_loss']:>10.4f} {row['keras_accuracy']:>6.4f} | "
        f"{abs(row['engine_loss'] - row['keras_loss']):>8.1e} {abs(row['engine_accuracy'] - row['keras_accuracy']):>7.1e} | "
        f"{row['engine_test_accuracy']:>15.4f} {row['keras_test_accuracy']:>14.4f} | "
        f"{row['engine_seconds']:>8.1f} {row['keras_seconds']:>7.1f}"))
    for key, value in report.summary().items():
        print_fn(f"{key}: {value:.3g}")
    report.to_json(os.path.join(config.output_dir, "parity.json"))
    plots.plot_parity(report.epochs, os.path.join(config.output_dir, "parity.png"),
                      title=f"{dataset.name}: engine ({config.mode}) vs tf.keras fit, same weights and batches")
    print_fn(f"Wrote {config.output_dir}/parity.json and {config.output_dir}/parity.png")
    return report

"""The main job, as a library call: load data, build the MLP, train, evaluate, write results.

`train.py` turns command-line flags into a `TrainConfig`, settles it (`preflight.settle`: the
output directory made final, every directory checked, before TensorFlow loads) and calls
`start`; tests and benchmarks call `run`, which settles and starts. Nothing here reads flags, so every option is visible in the dataclass.
The run's machinery is callbacks given to `Trainer.fit` (`run_callbacks`), in an order that
matters: the epoch's line is printed, TensorBoard logs the epoch's weights, early stopping
decides, and only then are the checkpoint written and a pending signal honoured; the progress
bar draws last, after a block's losses have been checked.

Everything is checked before TensorFlow trains a step: the directories (`preflight`, once),
the lock on the output directory (`files.claim`, one run per directory), the data, the model's
size against the memory there is (`check_model_fits`), the checkpoint to resume from (engine/app/resuming.py).
A full disk or a vanished directory while writing becomes one line (`faults.RunFault`), and
Ctrl-C before training starts exits like Ctrl-C during training.
"""

import contextlib
import dataclasses
import os
import signal
from typing import Callable, List, Optional

import tensorflow as tf

from engine import execution, losses, optimizers
from engine.callbacks import Callback, LambdaCallback
from engine.data import loading
from engine.data.validation import hold_out
from engine.deploy import export
from engine.distribute import strategies
from engine.distribute.distributed_training import DistributedTrainer
from engine.errors import ConfigError
from engine.app import preflight
from engine.app.defaults import dot_library_of, resolved, threads_of, with_steps_per_call
from engine.app.resuming import refuse_fewer_epochs, resume_or_start
from engine.run import determinism, devices, faults, files, interrupts, plots, writes, xla_flags
from engine.run.config import TrainConfig
from engine.run.model_size import check_model_fits
from engine.run.early_stopping import EarlyStopping
from engine.run.interrupts import Interrupted, SignalStop
from engine.run.progress import ProgressBar
from engine.run.safeguards import Safeguards
from engine.run.tensorboard import TensorBoardLogger
from engine.training import Trainer
from layers import mlp


def load_data(config: TrainConfig, print_fn: Callable[[str], None]) -> loading.ImageClassificationData:
    """Loads the configured data set and says what was loaded, and from where."""
    dataset = loading.load(config.dataset, config.data_dir, config.tfds_dir,
                        fallback=config.fallback_dataset, log=print_fn)
    print_fn(f"Data: {dataset.name}, {len(dataset.train_labels):,} train / {len(dataset.test_labels):,} test "
             f"images of {dataset.image_shape} from {dataset.source}")
    return dataset


def announce_device(config: TrainConfig, print_fn: Callable[[str], None], device: Optional[devices.Device] = None,
                    threads: int = 0, dots: str = "xla") -> devices.Device:
    device = device or devices.select(config.device)
    steps = ((f", {config.steps_per_execution} steps per call" if config.steps_per_execution
              else ", steps per call by the step's work") if config.mode != "eager" else "")
    per_op = f", {threads} thread{'s' * (threads > 1)} per op" if threads else ""
    halves = f", each batch in {config.shards} shards" if config.shards > 1 else ""
    library = {"xla": "", "ynnpack": ", dots on YNNPACK"}.get(dots, f", dots {dots}")
    print_fn(f"Device: {device.description} [{device.name}]; mode: {config.mode}{steps}{per_op}{halves}{library}; "
             f"gradients: {config.gradients}")
    return device


def run(config: TrainConfig, print_fn: Callable[[str], None] = print) -> dict:
    """Runs the job described by `config`; returns what it writes to history.json."""
    return start(preflight.settle(config), print_fn)


def start(config: TrainConfig, print_fn: Callable[[str], None] = print) -> dict:
    """Runs the job of a `config` that `preflight.settle` returned; returns what it writes to history.json."""
    config, device = resolved(config)
    with xla_flags.dots_on(dot_library_of(config, device)) as dots:  # before XLA compiles: it reads its flags once
        return _start(config, device, dots, print_fn)


def _start(config: TrainConfig, device: devices.Device, dots: str, print_fn: Callable[[str], None]) -> dict:
    wanted = threads_of(config, device)
    threads = execution.use_threads(wanted) if wanted else 0  # before any op runs
    if config.cpu_devices:
        strategies.split_cpu(config.cpu_devices)  # before any op runs
    announce_device(config, print_fn, device, threads, dots)
    deterministic = determinism.configure(config.deterministic, config.seed, device.kind)
    print_fn(f"Determinism: {'on (op determinism, seed ' + str(config.seed) + ')' if deterministic else 'off'}")
    strategy = strategies.create(config.strategy, device.kind, config.collective_timeout)
    print_fn(f"Strategy: {strategies.describe(strategy)}")
    try:
        with files.claim(config.output_dir):
            refuse_fewer_epochs(config)  # before the seconds of loading data
            dataset = load_data(config, print_fn)
            check_model_fits(config, dataset.image_shape, dataset.num_classes, len(dataset.train_labels))
            config = with_steps_per_call(config, dataset.image_shape, dataset.num_classes, print_fn)
            with tf.device(device.name) if strategy is None else contextlib.nullcontext():  # a strategy places itself
                return _train(config, dataset, print_fn, strategy)
    except KeyboardInterrupt as stop:  # a signal outside training's own handler (loading, evaluating, exporting)
        signum = interrupts.signal_number(stop)
        raise Interrupted(signum, f"stopped by {signal.Signals(signum).name} outside the training loop; the "
                                  "checkpoints, and any export, are as they were") from None
    except OSError as error:  # a full disk, a directory removed under the run
        latest = tf.train.latest_checkpoint(os.path.join(config.output_dir, "checkpoints"))
        kept = f"the last checkpoint, {latest}, is intact" if latest else ""
        raise faults.RunFault(f"cannot write: {faults.describe_os_error(error, kept)}") from None
    except tf.errors.OpError as error:
        if "space left" not in str(error):  # TensorFlow's own file writes report a full disk as an OpError
            raise
        latest = tf.train.latest_checkpoint(os.path.join(config.output_dir, "checkpoints"))
        kept = f"; the last checkpoint, {latest}, is intact" if latest else ""
        raise faults.RunFault(f"cannot write: no space left on device{kept}") from None
    except MemoryError:
        raise faults.RunFault(f"out of memory for the model {list(config.hidden)} at batch size {config.batch_size}: "
                              "pass smaller --hidden or --batch_size") from None


def float32_model(model, config: TrainConfig, dataset: loading.ImageClassificationData):
    """`model` itself, or under mixed_bfloat16 its float32 copy: an export computes in float32 (the
    weights are float32 already), so a served prediction needs no bfloat16 kernel."""
    if config.precision == "float32":
        return model
    copy = mlp(config.hidden, dataset.num_classes)
    copy.build((None,) + tuple(dataset.image_shape))
    for target, source in zip(copy.trainable_variables, model.trainable_variables):
        target.assign(source)
    return copy


def _train(config: TrainConfig, dataset: loading.ImageClassificationData, print_fn: Callable[[str], None],
           strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    with strategy.scope() if strategy else contextlib.nullcontext():  # variables mirrored on every replica
        model = mlp(config.hidden, dataset.num_classes, dtype=config.precision)
        optimizer = optimizers.get(config.optimizer, **config.optimizer_arguments())
    arguments = (model, losses.sparse_categorical_crossentropy, optimizer, config.mode, config.steps_per_execution,
                 config.gradients)
    trainer = DistributedTrainer(strategy, *arguments) if strategy else Trainer(*arguments, shards=config.shards)
    trainer.build((None,) + tuple(dataset.image_shape))  # weights and slots exist before a checkpoint is restored
    model.summary(print_fn)
    stopper = (EarlyStopping(trainer, config.early_stopping_monitor, config.early_stopping_patience,
                             config.early_stopping_min_delta) if config.early_stopping_patience else None)
    checkpointer, start = resume_or_start(config, dataset, trainer, stopper, print_fn)

    train = (dataset.train_images, dataset.train_labels)
    held_out = (dataset.test_images, dataset.test_labels) if config.validate_on_test else None
    if config.validation_split:
        try:
            train, held_out = hold_out(*train, config.validation_split)
        except ValueError as error:
            raise ConfigError(f"--{error}") from None
        print_fn(f"Validation: the last {len(held_out[1]):,} of {len(dataset.train_labels):,} training images "
                 f"(--validation_split={config.validation_split}); the test set is read once, at the end")
    epochs = config.epochs
    if stopper is not None and stopper.stopped_epoch:
        print_fn(f"The checkpointed run already stopped early after epoch {stopper.stopped_epoch}: nothing left "
                 f"to train; its best weights are restored (--noresume starts over)")
        epochs = 0
    with SignalStop() as stop:
        guard = Safeguards(checkpointer, list(model.trainable_variables), start, config.checkpoint_every, stop,
                           config.divergence_factor)
        callbacks = run_callbacks(config, trainer, stopper, guard, print_fn)
        trainer.fit(*train, epochs, config.batch_size, validation_data=held_out, seed=config.seed,
                    callbacks=callbacks, **guard.fit_arguments())
    history = guard.history
    if stopper is not None and stopper.best is not None:
        print_fn(stopper.summary())
    test = trainer.evaluate(dataset.test_images, dataset.test_labels, config.batch_size)
    print_fn(f"Test: loss {test['loss']:.4f} - accuracy {test['accuracy']:.4f}")
    if config.export_dir:
        saved_model, tflite = export.export(float32_model(model, config, dataset), dataset.image_shape,
                                            dataset.class_names, config.export_dir)
        print_fn(f"Exported {saved_model}, {tflite} and {os.path.join(config.export_dir, export.LABELS)}")

    results = {"config": {**dataclasses.asdict(config), "dataset_loaded": dataset.name,
                          "data_source": dataset.source},
               "epochs": history, "test": test}
    if stopper is not None and stopper.best is not None:
        results["early_stopping"] = {"stopped_epoch": stopper.stopped_epoch, "best_epoch": stopper.best_epoch,
                                     f"best_{config.early_stopping_monitor}": stopper.best}
    writes.write_json(os.path.join(config.output_dir, "history.json"), results)
    plots.plot_history(history, os.path.join(config.output_dir, "metrics.png"),
                       title=f"{dataset.name} MLP {'-'.join(map(str, config.hidden))}, batch {config.batch_size}")
    print_fn(f"Wrote {config.output_dir}/history.json and {config.output_dir}/metrics.png")
    return results


def run_callbacks(config: TrainConfig, trainer: Trainer, stopper: Optional[EarlyStopping], guard: Safeguards,
                  print_fn: Callable[[str], None]) -> List[Callback]:
    """The job's callbacks for `Trainer.fit`, in the order the module docstring gives."""
    def report(epoch: int, logs: dict) -> None:
        validation = (f" - val_loss {logs['val_loss']:.4f} - val_accuracy {logs['val_accuracy']:.4f}"
                      if "val_loss" in logs else "")
        print_fn(f"Epoch {epoch}/{config.epochs} - loss {logs['loss']:.4f} - accuracy "
                 f"{logs['accuracy']:.4f}{validation} - {logs['seconds']:.1f}s - {logs['steps_per_second']:.1f} steps/s")

    callbacks: List[Callback] = [LambdaCallback(on_epoch_end=report)]
    if config.tensorboard_dir:
        callbacks.append(TensorBoardLogger(config.tensorboard_dir, trainer))
    if stopper is not None:
        callbacks.append(stopper)
    return callbacks + [guard, ProgressBar(trainer.progress_logs)]

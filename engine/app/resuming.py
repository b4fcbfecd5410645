"""Resuming a run: which checkpoint, whether it is the same run's, and where training picks up.

`train.py` resumes by default (`--resume`; `--noresume` starts over, `--resume_from` names a
checkpoint). A checkpoint is the same run's when its identity matches this run's settings
(`resume_or_start`: data, model, precision, batch size, seed, validation split, early stopping);
the learning rate may differ, since lowering it is the usual fix after a divergence. A run that
asks for fewer epochs than a checkpoint has trained is refused before any data loads
(`refuse_fewer_epochs`). The checkpoint files themselves: engine/run/checkpoints.py.
"""

import os
from typing import Callable, Optional, Tuple

from engine.data import loading
from engine.run.checkpoint_files import check_epochs, epochs_trained, resume_point
from engine.run.checkpoints import Checkpointer, Position
from engine.run.config import TrainConfig
from engine.run.early_stopping import EarlyStopping
from engine.training import Trainer


def refuse_fewer_epochs(config: TrainConfig) -> None:
    """A checkpoint to resume that has trained more epochs than --epochs asks, refused from its history
    alone, before any data loads (`resume_or_start` checks it again on the restored state)."""
    path = resume_point(os.path.join(config.output_dir, "checkpoints"), config.resume, config.resume_from)
    trained = epochs_trained(path) if path else None
    if trained is not None:
        check_epochs(path, trained, config.epochs)


def resume_or_start(config: TrainConfig, dataset: loading.ImageClassificationData, trainer: Trainer,
                    stopper: Optional[EarlyStopping], print_fn: Callable[[str], None]) -> Tuple[Checkpointer, Position]:
    """Restores OUTPUT_DIR/checkpoints' newest checkpoint when there is one and `config.resume`.

    The checkpoint must be of the same run (the settings below); the learning rate may change
    (lowering it is the usual fix after a divergence), so it is set from `config` after restoring.
    """
    identity = {"dataset": dataset.name, "data_fingerprint": dataset.fingerprint,
                "train_examples": len(dataset.train_labels),
                "image_shape": list(dataset.image_shape), "num_classes": dataset.num_classes,
                "hidden": list(config.hidden), "precision": config.precision, "batch_size": config.batch_size, "seed": config.seed, "validation_split": config.validation_split,
                "early_stopping": ([config.early_stopping_monitor, config.early_stopping_patience,
                                    config.early_stopping_min_delta] if stopper is not None else None)}
    directory = os.path.join(config.output_dir, "checkpoints")
    states = {"early_stopping": stopper} if stopper is not None else {}
    path = resume_point(directory, config.resume, config.resume_from)
    # Starting over writes beside the old checkpoints and deletes them only once its first one is complete.
    checkpointer = Checkpointer(directory, trainer, identity, states=states, replace=path is None)
    every = f" and every {config.checkpoint_every} steps" if config.checkpoint_every else ""
    print_fn(f"Checkpoints: {directory}, at every epoch's end{every}")
    if path is None:
        if checkpointer.replacing:
            print_fn(f"--noresume: starting over; the previous run's checkpoints in {directory} are deleted "
                     "once this run's first checkpoint is written")
        return checkpointer, Position()
    start = checkpointer.restore(path)
    check_epochs(path, len(start.history), config.epochs)
    trainer.optimizer.learning_rate.assign(config.learning_rate)
    if start.epoch > config.epochs:  # "epoch 31, 0 steps of it done" would read as work left
        print_fn(f"Resuming from {path}: the run is complete, {start.epoch - 1} epochs trained "
                 f"(--epochs={config.epochs}): nothing left to train, only the test set is evaluated "
                 f"(a larger --epochs trains on; --noresume starts over)")
    else:
        print_fn(f"Resuming from {path}: epoch {start.epoch}, {start.step} steps of it done, "
                 f"{len(start.history)} epochs in the history (--noresume starts over)")
    return checkpointer, start

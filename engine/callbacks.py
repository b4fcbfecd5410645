"""The epoch-end callbacks a training job runs, built from its config in one place.

Order matters: TensorBoard logs an epoch's weights before early stopping may replace them by
the best epoch's, and early stopping comes last so that every other callback has seen the
epoch on which training stops.
"""

from typing import Callable, List, Optional, Tuple

from engine.config import TrainConfig
from engine.early_stopping import EarlyStopping
from engine.tensorboard import TensorBoardLogger


def epoch_callbacks(config: TrainConfig, trainer, report: Callable[[dict], None]
                    ) -> Tuple[List[Callable[[dict], None]], Optional[EarlyStopping]]:
    """Returns the callbacks for `Trainer.fit(on_epoch_end=...)`, and the early stopper if there is one."""
    callbacks: List[Callable[[dict], None]] = [report]
    if config.tensorboard_dir:
        callbacks.append(TensorBoardLogger(config.tensorboard_dir, trainer))
    stopper = None
    if config.early_stopping_patience:
        stopper = EarlyStopping(trainer, config.early_stopping_monitor, config.early_stopping_patience,
                                config.early_stopping_min_delta)
        callbacks.append(stopper)
    return callbacks, stopper

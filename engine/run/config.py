"""A training run's settings, validated before anything heavy (TensorFlow, data) is loaded.

Kept free of TensorFlow imports on purpose: `train.py` checks every flag in a fraction of a
second and fails with one line, instead of after TensorFlow's multi-second start-up.
"""

import dataclasses
import os
import tempfile
from typing import Optional, Tuple

from engine.errors import ConfigError

MODES = ("eager", "graph", "xla")  # see engine/execution.py for what each one does
DEVICES = ("auto", "cpu", "gpu", "tpu")  # see engine/run/devices.py
EARLY_STOPPING_MONITORS = ("val_loss", "val_accuracy")  # see engine/run/early_stopping.py
STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")  # see engine/distribute/strategies.py


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; validated on construction."""

    dataset: str = "fashion_mnist"  # what README's first command trains, and search's default
    data_dir: Optional[str] = None
    tfds_dir: Optional[str] = None
    fallback_dataset: Optional[str] = None  # used only when `dataset` cannot be had offline
    epochs: int = 30
    batch_size: int = 32
    hidden: Tuple[int, ...] = (256, 128)
    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    seed: int = 0
    mode: str = "xla"
    steps_per_execution: int = 64
    device: str = "auto"
    validate_on_test: bool = True
    output_dir: str = "runs/train"
    tensorboard_dir: Optional[str] = None  # engine/run/tensorboard.py; None writes no events
    early_stopping_patience: int = 0  # engine/run/early_stopping.py; 0 turns early stopping off
    early_stopping_min_delta: float = 0.0
    early_stopping_monitor: str = "val_loss"
    validation_split: float = 0.0  # engine/data/validation.py; 0 validates on the test set (validate_on_test)
    export_dir: Optional[str] = None  # engine/deploy/export.py; None exports nothing
    checkpoint_every: int = 0  # steps; 0: at the end of every epoch only (always done)
    resume: bool = True  # continue from OUTPUT_DIR/checkpoints when a checkpoint is there
    deterministic: Optional[bool] = None  # None: on where the run lands on the CPU (engine/run/determinism.py)
    strategy: str = "none"
    cpu_devices: int = 0  # 0: leave the CPU whole; N: split it into N logical devices
    collective_timeout: float = 60.0  # seconds a multi-worker all-reduce may wait for its peers

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch_size must be >= 1, got {self.batch_size}"),
            (len(self.hidden) > 0 and all(h >= 1 for h in self.hidden),
             f"--hidden must be a comma-separated list of positive integers like 256,128, got {','.join(map(str, self.hidden)) or 'nothing'}"),
            (self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.mode in MODES, f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.steps_per_execution >= 1, f"--steps_per_execution must be >= 1, got {self.steps_per_execution}"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}"),
            (self.early_stopping_patience >= 0,
             f"--early_stopping_patience must be >= 0 (0 is off), got {self.early_stopping_patience}"),
            (self.early_stopping_min_delta >= 0,
             f"--early_stopping_min_delta must be >= 0, got {self.early_stopping_min_delta}"),
            (self.early_stopping_monitor in EARLY_STOPPING_MONITORS,
             f"--early_stopping_monitor must be one of {', '.join(EARLY_STOPPING_MONITORS)}, "
             f"got {self.early_stopping_monitor!r}"),
            (0 <= self.validation_split < 1, f"--validation_split must be in [0, 1), got {self.validation_split}"),
            (self.early_stopping_patience == 0 or self.validation_split > 0 or self.validate_on_test,
             "--early_stopping_patience needs validation data: pass --validation_split=0.1 (or --validate_on_test)"),
            (self.checkpoint_every >= 0,
             f"--checkpoint_every must be >= 0 steps (0: every epoch only), got {self.checkpoint_every}"),
            (self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"),
            (self.cpu_devices >= 0, f"--cpu_devices must be >= 0 (0 keeps one CPU device), got {self.cpu_devices}"),
            (self.collective_timeout > 0, f"--collective_timeout must be > 0 seconds, got {self.collective_timeout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def check_output_dir(path: str) -> None:
    """Fails early (before any training) if results could not be written to `path`."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--output_dir {path} is a file, not a directory: pass a directory path")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ConfigError(f"--output_dir {path} is not writable ({error.strerror}): pass a writable directory") from None



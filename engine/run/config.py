"""A training run's settings, validated before anything heavy (TensorFlow, data) is loaded.

Kept free of TensorFlow imports on purpose: `train.py` checks every flag in a fraction of a
second and fails with one line, instead of after TensorFlow's multi-second start-up.
"""

import dataclasses
import errno
import math
import os
import struct
import tempfile
from typing import Optional, Sequence, Tuple

from engine.errors import ConfigError
from engine.run import directories

MODES = ("eager", "graph", "xla")  # see engine/execution.py for what each one does
DEVICES = ("auto", "cpu", "gpu", "tpu")  # see engine/run/devices.py
EARLY_STOPPING_MONITORS = ("val_loss", "val_accuracy")  # see engine/run/early_stopping.py
STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")  # see engine/distribute/strategies.py
GRADIENTS = ("tape", "manual")  # see engine/gradients.py (repeated so a flag is checked before TensorFlow loads)
# engine.optimizers.OPTIMIZERS by name, each with the run flags it takes beside --learning_rate
# (Keras's argument names): repeated here so --optimizer and its flags are checked before TensorFlow
# loads; tests/test_optimizer_flags.py keeps the two equal.
OPTIMIZER_FLAGS = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "adamw": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "rmsprop": ("rho", "momentum", "epsilon", "weight_decay"),
}


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
    optimizer: str = "sgd"  # a name of OPTIMIZER_FLAGS; the flags below are None for the optimizer's own default
    beta_1: Optional[float] = None
    beta_2: Optional[float] = None
    epsilon: Optional[float] = None
    weight_decay: Optional[float] = None
    rho: Optional[float] = None
    seed: int = 0
    mode: str = "xla"
    steps_per_execution: int = 64
    gradients: str = "tape"  # engine/gradients.py: tf.GradientTape, or the backward pass written out
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
    resume_from: Optional[str] = None  # a checkpoint path prefix (.../ckpt-3) to resume from instead of the newest
    divergence_factor: float = 100.0  # stop when a loss exceeds this times the run's first step's (engine/run/faults.py)
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
            (0 <= self.seed < 2**31, f"--seed must be in [0, 2**31), got {self.seed}"),
            (self.divergence_factor > 1,
             f"--divergence_factor must be > 1 (a bound on the loss, times the first step's), got {self.divergence_factor}"),
            (not (self.resume_from and not self.resume),
             "--resume_from and --noresume contradict each other: pass one of them"),
            (learning_rate_problem(self.learning_rate) is None, f"--{learning_rate_problem(self.learning_rate)}"),
            (0 <= self.momentum < 1 and float32(self.momentum) < 1,
             f"--momentum must be in [0, 1), got {self.momentum}"
             + (" (it rounds to 1.0 in float32: a momentum that never forgets a gradient)"
                if 0 <= self.momentum < 1 else "")),
            *self.optimizer_checks(),
            (self.mode in MODES, f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.gradients in GRADIENTS, f"--gradients must be one of {', '.join(GRADIENTS)}, got {self.gradients!r}"),
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


    def optimizer_checks(self):
        """--optimizer is known, each of its flags in range, and no flag given that it does not take
        (`--optimizer=adam --momentum=0.9` would otherwise be silently ignored)."""
        if self.optimizer not in OPTIMIZER_FLAGS:
            return [(False, f"--optimizer must be one of {', '.join(OPTIMIZER_FLAGS)}, got {self.optimizer!r}")]
        given = {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                 "weight_decay": self.weight_decay, "rho": self.rho,
                 "momentum": self.momentum or None, "nesterov": self.nesterov or None}
        taken = OPTIMIZER_FLAGS[self.optimizer]
        foreign = [name for name, value in given.items() if value is not None and name not in taken]
        in_unit = {name: given[name] for name in ("beta_1", "beta_2", "rho") if given[name] is not None}
        return [
            (not foreign, f"--optimizer={self.optimizer} takes no --{', --'.join(foreign)}: its flags are "
                          f"--learning_rate, --{', --'.join(taken)}"),
            *((0 <= value < 1 and float32(value) < 1, f"--{name} must be in [0, 1), got {value}"
               + (" (it rounds to 1.0 in float32)" if 0 <= value < 1 else "")) for name, value in in_unit.items()),
            (self.epsilon is None or (self.epsilon > 0 and math.isfinite(self.epsilon)),
             f"--epsilon must be a finite number > 0, got {self.epsilon}"),
            (self.weight_decay is None or (self.weight_decay >= 0 and math.isfinite(self.weight_decay)),
             f"--weight_decay must be a finite number >= 0, got {self.weight_decay}"),
        ]

    def optimizer_arguments(self) -> dict:
        """The arguments for `engine.optimizers.get(self.optimizer, ...)`: the learning rate and each of
        the optimizer's flags that was given (the rest keep Keras's defaults)."""
        values = {name: getattr(self, name) for name in OPTIMIZER_FLAGS[self.optimizer]}
        return {"learning_rate": self.learning_rate, **{name: value for name, value in values.items() if value is not None}}


def float32(value: float) -> float:
    """`value` rounded to float32, as the variables hold it."""
    return struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.4e38 else math.copysign(math.inf, value)


def learning_rate_problem(rate: float) -> Optional[str]:
    """What is wrong with a learning rate (None: nothing): it must be finite, > 0, and not 0 in float32.

    `inf` would train and then "diverge"; `1e-300` rounds to 0 in float32 and would train
    nothing, silently; a learning rate below float32's smallest normal number (1.2e-38) moves no
    weight that is not itself tiny.
    """
    if not rate > 0:
        return f"learning_rate must be > 0, got {rate}"
    if not math.isfinite(rate):
        return f"learning_rate must be a finite number > 0, got {rate}: training would diverge at its first step"
    if float32(rate) < 1.2e-38:
        return (f"learning_rate {rate:g} is below float32's smallest normal number (1.2e-38): the weights, held "
                "in float32, would not move; pass a larger --learning_rate")
    return None


def check_output_dir(path: str, flag: str = "--output_dir") -> None:
    """Fails early (before any training) if files could not be written to `path`; creates nothing.

    A missing `path` is checked through its nearest existing ancestor, which must be a writable
    directory, so that a refused run leaves no empty directory behind. A path starting with an
    unexpanded `~` is refused (engine/run/directories.py says why).
    """
    directories.check_no_tilde(path, flag)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is a file, not a directory: pass a directory path")
    existing = path
    while not os.path.exists(existing) and os.path.dirname(os.path.abspath(existing)) != os.path.abspath(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    try:
        if not os.path.isdir(existing):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.NamedTemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"{flag} {path} is not writable ({error.strerror}): pass a writable directory") from None


def check_model_fits(config: TrainConfig, image_shape: Sequence[int], num_classes: int, examples: int = 0) -> None:
    """Refuses, from its parameter count, a model whose training state cannot fit in memory.

    Training holds each parameter about four times (the weight, its gradient, a momentum slot and
    TensorFlow's temporaries), plus a batch of activations per layer forward and backward;
    `--hidden=100000000` would otherwise die of an out-of-memory error after minutes. A batch
    is never larger than the `examples` there are (when given): `--batch_size=10**9` on 640
    images trains on batches of 640.
    """
    batch = min(config.batch_size, examples) if examples else config.batch_size
    sizes = [math.prod(image_shape), *config.hidden, num_classes]
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    needed = 4 * (4 * parameters + 2 * batch * sum(sizes))  # float32 bytes
    available = _available_memory()
    if available and needed > available:
        fix = "smaller --hidden" if 4 * 4 * parameters > available / 2 else "smaller --hidden or --batch_size"
        raise ConfigError(f"the model {'-'.join(map(str, config.hidden))} has {parameters:,} parameters and needs "
                          f"about {needed / 2**30:.1f} GiB to train at batch size {batch:,}, "
                          f"more than the {available / 2**30:.1f} GiB of memory available: pass {fix}")


def _available_memory() -> int:
    """Bytes of memory available (MemAvailable of /proc/meminfo), or 0 where unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0

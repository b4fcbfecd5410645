"""A training run's settings, validated before anything heavy (TensorFlow, data) is loaded.

Kept free of TensorFlow imports on purpose: `train.py` checks every flag in a fraction of a
second and fails with one line, instead of after TensorFlow's multi-second start-up.

Each run option is declared once, as a field of `TrainConfig` made by `option`: its default,
its help, its allowed values (`choices`, or a `lower_bound`), and so its check. The choice is
field metadata that generates the absl flags (`define_flags`, which train.py calls), not absl
flags that the config reads: a library caller building a `TrainConfig` gets the same checks
as the command line, and the dataclass stays the one list of what a run can be told.
`__post_init__` runs the checks the metadata declares, then those across fields (a flag the
optimizer does not take, early stopping without validation data, ...). The options several
programs share (`--dataset`, `--data_dir`, `--tfds_dir`, `--hidden`, `--mode`) are declared in
engine/run/cli.py, where search and the tour take them too; `from_flags` reads them alike.
"""

import dataclasses
import math
import struct
from typing import Optional, Sequence, Tuple, get_args

from absl import flags

from engine.errors import ConfigError

MODES = ("eager", "graph", "xla")  # see engine/execution.py for what each one does
MODE_CHOICES = ("auto",) + MODES  # auto: `engine.execution.mode_for` the batch size, precision and CPU
PRECISIONS = ("float32", "mixed_bfloat16")  # layers/layer.py: a layer's dtype or Keras's mixed policy name
DEVICES = ("auto", "cpu", "gpu", "tpu")  # see engine/run/devices.py
EARLY_STOPPING_MONITORS = ("val_loss", "val_accuracy")  # see engine/run/early_stopping.py
STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")  # see engine/distribute/strategies.py
GRADIENTS = ("tape", "manual")  # see engine/gradients.py (repeated so a flag is checked before TensorFlow loads)
SHARDS_AT_MOST = 16  # --shards: each shard is one more copy of the step in the compiled program, traced and compiled
# engine.optimizers.OPTIMIZERS by name, each with the run flags it takes beside --learning_rate
# (Keras's argument names): repeated here so --optimizer and its flags are checked before TensorFlow
# loads; tests/test_optimizer_flags.py keeps the two equal.
OPTIMIZER_FLAGS = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "adamw": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "rmsprop": ("rho", "momentum", "epsilon", "weight_decay"),
}


def option(default, help_text: str, choices: Optional[Sequence[str]] = None, lower_bound: Optional[float] = None,
           note: str = ""):
    """A `TrainConfig` field that is a train.py flag: `--NAME`, with `default`, `help_text`, and either the
    `choices` it may take or the `lower_bound` it may not go below (`note` says why, in the error)."""
    return dataclasses.field(default=default, metadata={"help": help_text, "choices": choices,
                                                        "lower_bound": lower_bound, "note": note})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; validated on construction."""

    dataset: str = "fashion_mnist"  # what README's first command trains, and search's default
    data_dir: Optional[str] = None
    tfds_dir: Optional[str] = None
    fallback_dataset: Optional[str] = None  # used only when `dataset` cannot be had offline
    epochs: int = option(30, "Passes over the training set.", lower_bound=1)
    batch_size: int = option(32, "Examples per step; the last partial batch is kept.", lower_bound=1)
    hidden: Tuple[int, ...] = (256, 128)
    learning_rate: float = option(0.01, "The learning rate, > 0 (Keras's default for adam, adamw and rmsprop "
                                  "is 0.001).")
    momentum: float = option(0.0, "SGD's or RMSprop's momentum, in [0, 1).")
    nesterov: bool = option(False, "SGD: use Nesterov momentum.")
    # One of OPTIMIZER_FLAGS; the flags below are None for the optimizer's own default.
    optimizer: str = option("sgd", "The optimizer (engine/optimizers/): sgd, adam, adamw or rmsprop, Keras's update "
                            "rules; the flags below it does not take are refused.", choices=tuple(OPTIMIZER_FLAGS))
    beta_1: Optional[float] = option(None, "Adam/AdamW: decay of the first-moment (mean gradient) estimate, in [0, 1); "
                                     "default 0.9.")
    beta_2: Optional[float] = option(None, "Adam/AdamW: decay of the second-moment (mean squared gradient) estimate, "
                                     "in [0, 1); default 0.999.")
    epsilon: Optional[float] = option(None, "Adam/AdamW/RMSprop: added to the root of the second moment, > 0; "
                                      "default 1e-7.")
    weight_decay: Optional[float] = option(None, "Decoupled weight decay, w <- w - lr * weight_decay * w each step, "
                                           ">= 0; default none (AdamW: 0.004).")
    rho: Optional[float] = option(None, "RMSprop: decay of the mean squared gradient, in [0, 1); default 0.9.")
    seed: int = option(0, "Seed for weights and per-epoch shuffling.")
    mode: str = "auto"  # resolved by the job (engine.execution.mode_for) once TensorFlow is loaded
    steps_per_execution: int = option(0, "Training steps run inside one compiled call (graph and xla modes); 0: "
                                      "as many as hold about 100 GFLOP of work, at most 2048 (the reference model's "
                                      "whole epoch at batch 32; a call never spans two epochs; engine/execution.py's "
                                      "steps_per_execution_for).", lower_bound=0)
    threads: int = option(0, "Threads inside one op on the CPU (TensorFlow's intra-op pool); 0: by batch size, "
                          "engine/execution.py's threads_for (below batch 64, one per core where cores are hyperthreaded; "
                          "else TensorFlow's own).", lower_bound=0)
    shards: int = option(0, "Row blocks each step's batch is cut into, their gradients combined into the batch's "
                         "(engine/gradients.py's sharded; the same numbers to rounding); 0: engine/execution.py's "
                         "shards_for (2 on a CPU of real cores where halves were measured to pay, by mode, precision "
                         "and batch size; else 1).", lower_bound=0)
    precision: str = option("float32", "float32, or mixed_bfloat16 (Keras's policy: float32 weights and optimizer "
                            "state, bfloat16 matmuls, the loss in float32; fast where the CPU has AMX or AVX512_BF16, "
                            "in graph mode, which --mode=auto picks from batch size 256). The export is float32 "
                            "either way.", choices=PRECISIONS)
    gradients: str = option("tape", "How each step's gradients are computed: tape (tf.GradientTape) or manual (each "
                            "layer's backward rule, written out beside its forward).", choices=GRADIENTS)
    device: str = option("auto", "auto (TPU, else GPU, else CPU), cpu, gpu or tpu.", choices=DEVICES)
    validate_on_test: bool = option(True, "Evaluate the test set after every epoch (monitoring only).")
    output_dir: str = option("runs/train", "Where history.json and metrics.png are written.")
    tensorboard_dir: Optional[str] = option(None, "Write TensorBoard scalars and weight histograms per epoch here.")
    early_stopping_patience: int = option(0, "Stop after this many epochs without improvement of the monitored "
                                          "validation metric, and restore the best weights; 0 is off.",
                                          lower_bound=0, note=" (0 is off)")
    early_stopping_min_delta: float = option(0.0, "Smallest change of the monitored metric that counts as "
                                             "improvement.", lower_bound=0.0)
    early_stopping_monitor: str = option("val_loss", "val_loss (lower is better) or val_accuracy (higher is better).",
                                         choices=EARLY_STOPPING_MONITORS)
    validation_split: float = option(0.0, "Hold out this last fraction of the training set for validation (instead "
                                     "of the test set), in [0, 1); 0 is off.")
    export_dir: Optional[str] = option(None, "After training, write a SavedModel, a .tflite and labels.txt here.")
    checkpoint_every: int = option(0, "Also write a checkpoint every this many steps (0: only at the end of every "
                                   "epoch, which is always done), into OUTPUT_DIR/checkpoints.", lower_bound=0,
                                   note=" steps (0: every epoch only)")
    resume: bool = option(True, "Continue from the newest checkpoint in OUTPUT_DIR/checkpoints when there is one "
                          "(said at start-up); --noresume starts over (they are deleted at its first checkpoint).")
    resume_from: Optional[str] = option(None, "Resume from this checkpoint (a path prefix like "
                                        "OUTPUT_DIR/checkpoints/ckpt-3).")
    divergence_factor: float = option(100.0, "Stop when a loss exceeds this times the run's first step's loss.")
    deterministic: Optional[bool] = option(None, "Op determinism and seeded generators: the same flags give the same "
                                           "numbers. Default: on when the run lands on the CPU.")
    strategy: str = option("none", "tf.distribute strategy: none, mirrored (every local GPU, or the logical CPU "
                           "devices of --cpu_devices), multi_worker (the workers TF_CONFIG names) or tpu.",
                           choices=STRATEGIES)
    cpu_devices: int = option(0, "Split the CPU into this many logical devices (0: don't), so --strategy=mirrored "
                              "has replicas on a machine without GPUs. They share the same cores.", lower_bound=0,
                              note=" (0 keeps one CPU device)")
    collective_timeout: float = option(60.0, "Seconds a multi-worker all-reduce waits for its peers before the run "
                                       "stops with an error (a worker died or hangs).")

    def __post_init__(self):
        checks = [
            *self.declared_checks(),
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
            (self.mode in MODE_CHOICES, f"--mode must be one of {', '.join(MODE_CHOICES)}, got {self.mode!r}"),
            (0 <= self.validation_split < 1, f"--validation_split must be in [0, 1), got {self.validation_split}"),
            (self.early_stopping_patience == 0 or self.validation_split > 0 or self.validate_on_test,
             "--early_stopping_patience needs validation data: pass --validation_split=0.1 (or --validate_on_test)"),
            (self.shards <= min(SHARDS_AT_MOST, self.batch_size), f"--shards must be at most {SHARDS_AT_MOST} and at "
             f"most --batch_size={self.batch_size} (a shard of no rows computes nothing; each shard is one more copy of "
             f"the step to compile), got {self.shards}"),
            (self.shards <= 1 or (self.strategy == "none" and not self.cpu_devices), f"--shards={self.shards} cuts a "
             "step on one device; with --strategy or --cpu_devices the replicas share the batch: leave --shards at 0"),
            (self.collective_timeout > 0, f"--collective_timeout must be > 0 seconds, got {self.collective_timeout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


    def declared_checks(self):
        """The checks the fields' `option`s declare: each value among its choices, or not below its bound."""
        checks = []
        for field in dataclasses.fields(self):
            value, choices, bound = getattr(self, field.name), field.metadata.get("choices"), field.metadata.get("lower_bound")
            if choices is not None and field.name != "optimizer":  # optimizer_checks says the optimizer's
                checks.append((value in choices, f"--{field.name} must be one of {', '.join(choices)}, got {value!r}"))
            if bound is not None:
                checks.append((value >= bound, f"--{field.name} must be >= {bound:g}{field.metadata['note']}, "
                                               f"got {value}"))
        return checks

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


def define_flags(flag_values: flags.FlagValues, module_name: str) -> None:
    """Declares a flag for every `option` field of `TrainConfig` in `flag_values`, as `module_name`'s
    (the heading its flags are listed under in --help)."""
    for field in dataclasses.fields(TrainConfig):
        if "help" not in field.metadata:
            continue
        kind = next((arg for arg in get_args(field.type) if arg is not type(None)), field.type)  # Optional[X] -> X
        choices, bound = field.metadata["choices"], field.metadata["lower_bound"]
        common = dict(flag_values=flag_values, module_name=module_name)
        if choices is not None:
            flags.DEFINE_enum(field.name, field.default, choices, field.metadata["help"], **common)
        elif kind is bool:
            flags.DEFINE_boolean(field.name, field.default, field.metadata["help"], **common)
        elif kind in (int, float):
            define = flags.DEFINE_integer if kind is int else flags.DEFINE_float
            define(field.name, field.default, field.metadata["help"], lower_bound=bound, **common)
        else:
            flags.DEFINE_string(field.name, field.default, field.metadata["help"], **common)


def from_flags(flag_values: flags.FlagValues) -> "TrainConfig":
    """The `TrainConfig` of the parsed `flag_values`: every field that has a flag there, the rest as declared."""
    return TrainConfig(**{field.name: flag_values[field.name].value for field in dataclasses.fields(TrainConfig)
                          if field.name in flag_values})


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

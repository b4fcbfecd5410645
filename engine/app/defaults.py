"""What train.py's machine-dependent defaults become on this machine: `--mode=auto`, `--shards=0`,
`--threads=0`, `--steps_per_execution=0`, and the library XLA hands the dots to (no flag).

The rules themselves, and the measurements behind them, are engine/execution.py's `*_for`
functions; this module reads the machine (the device, the CPU's flags and cores) and applies them
where they belong: the per-CPU choices only where the run `owns_the_cpu`. `resolved` is the one
place --mode and --shards are settled, in the order that matters (the shards depend on the mode):
train.py's job, the Keras comparison and the peers benchmark all start from it.
"""

import dataclasses
import math
from typing import Callable, Optional, Tuple

from engine import execution
from engine.run import devices
from engine.run.config import TrainConfig


def owns_the_cpu(config: TrainConfig, device: devices.Device) -> bool:
    """Whether the run is on the CPU with no strategy: then the per-CPU choices of engine/execution.py
    apply (`threads_for`, `shards_for`); a strategy's replicas share the CPU's pool and the batch."""
    return device.kind == "cpu" and config.strategy == "none" and not config.cpu_devices


def threads_of(config: TrainConfig, device: devices.Device) -> int:
    """The intra-op threads the run sets (0: TensorFlow's default): `--threads`, or where the run
    `owns_the_cpu`, `execution.threads_for` its batch size and this machine's cores."""
    if config.threads:
        return config.threads
    if owns_the_cpu(config, device):
        return execution.threads_for(config.batch_size, *devices.cpu_topology())
    return 0


def dot_library_of(config: TrainConfig, device: devices.Device) -> str:
    """The library XLA hands the step's dots to (engine/run/xla_flags.py): where the run `owns_the_cpu`,
    `execution.dot_library_for` its batch size, mode, precision and shards; else XLA's own. After
    `resolved`: the choice depends on the mode and the shards."""
    if owns_the_cpu(config, device):
        return execution.dot_library_for(config.batch_size, config.mode, config.precision, config.shards)
    return "xla"


def with_shards(config: TrainConfig, device: devices.Device) -> TrainConfig:
    """`config` with --shards=0 resolved: where the run `owns_the_cpu`, by `execution.shards_for` its
    batch size, mode, precision and cores; else 1. After `with_mode`: the choice depends on the mode."""
    if config.shards:
        return config
    shards = 1
    if owns_the_cpu(config, device):
        shards = execution.shards_for(config.batch_size, config.mode, config.precision, *devices.cpu_topology())
    return dataclasses.replace(config, shards=shards)


def resolved(config: TrainConfig) -> Tuple[TrainConfig, devices.Device]:
    """`config` with --mode=auto and --shards=0 resolved for this machine (`with_mode`, then
    `with_shards`, which depends on the mode), and the device it runs on: what every program that
    trains as train.py does starts from."""
    config = with_mode(config)
    device = devices.select(config.device)  # lists devices without starting TensorFlow's runtime
    return with_shards(config, device), device


def with_mode(config: TrainConfig) -> TrainConfig:
    """`config` with --mode=auto resolved for its batch size, precision and CPU (`execution.mode_for`)."""
    if config.mode != "auto":
        return config
    on_avx512 = devices.select(config.device).kind == "cpu" and bool(devices.cpu_flags(("avx512f",)))
    return dataclasses.replace(config, mode=execution.mode_for(config.batch_size, config.precision, on_avx512))


def with_steps_per_call(config: TrainConfig, image_shape, num_classes: int,
                        print_fn: Optional[Callable[[str], None]] = None) -> TrainConfig:
    """`config` with --steps_per_execution=0 resolved by its model's work per step
    (`execution.steps_per_execution_for`), said on `print_fn` when given."""
    if config.steps_per_execution:
        return config
    flops = execution.dense_train_flops(config.batch_size, [math.prod(image_shape), *config.hidden, num_classes])
    steps = execution.steps_per_execution_for(flops)
    if print_fn and config.mode != "eager":
        print_fn(f"Steps per call: {steps} (at most the epoch; {flops / 1e6:,.1f} MFLOP a step; "
                 "--steps_per_execution sets it)")
    return dataclasses.replace(config, steps_per_execution=steps)

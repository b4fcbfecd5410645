"""Refusing, before any training, a model whose training state cannot fit in this machine's memory.

`--hidden=100000000` would otherwise build, start, and die of an out-of-memory error minutes
later; the estimate below is cheap (a parameter count) and errs on the side of running.
"""

import math
from typing import Sequence

from engine.errors import ConfigError
from engine.run.config import TrainConfig


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

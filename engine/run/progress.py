"""Progress within an epoch: a live bar on a terminal, a plain line now and then elsewhere.

On a terminal the bar is redrawn in place (carriage return) at most 10 times a second;
in a log file or CI, where `\\r` would pile up, a plain line is written at most every
`plain_interval` seconds, so a long epoch still shows it is alive without flooding the log.
Reading the metrics waits for the device, so they are read only when something is shown.
"""

import sys
import time
from typing import Callable, Dict, Optional, TextIO

import tensorflow as tf

from engine.callbacks import Callback


class ProgressBar(Callback):
    """A callback for `Trainer.fit` showing each epoch's progress and its running metrics.

    Args:
      read_metrics: returns the running metrics (`trainer.progress_logs`).
    """

    def __init__(self, read_metrics: Callable[[], Dict[str, float]], stream: Optional[TextIO] = None,
                 width: int = 30, plain_interval: float = 10.0):
        self.read_metrics = read_metrics
        self.steps = 0
        self.stream = stream or sys.stdout
        self.width = width
        self.is_terminal = self.stream.isatty()
        self.interval = 0.1 if self.is_terminal else plain_interval
        self._last_shown = time.monotonic()

    def on_train_begin(self, steps_per_epoch: int) -> None:
        self.steps = steps_per_epoch

    def on_block_end(self, epoch: int, step: int, losses: tf.Tensor) -> None:
        self.show(step, self.steps)

    def show(self, step: int, steps: int) -> None:
        """Draws `step` of `steps`, unless the last drawing is too recent."""
        now = time.monotonic()
        last = step == steps
        if now - self._last_shown < self.interval and not (last and self.is_terminal):
            return
        self._last_shown = now
        metrics = " ".join(f"{k} {v:.4f}" for k, v in self.read_metrics().items())
        done = self.width * step // steps
        bar = "=" * done + (">" if done < self.width else "") + "." * (self.width - done - 1)
        line = f"{step}/{steps} [{bar[:self.width]}] {metrics}"
        if self.is_terminal:
            self.stream.write("\r" + line + ("\n" if last else ""))
        else:
            self.stream.write(f"  step {line}\n")
        self.stream.flush()

"""The training figure: loss and accuracy per epoch, training and validation side by side."""

from typing import Dict, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: Sequence[Dict[str, float]], path: str, title: str = "") -> None:
    """Writes a two-panel PNG (loss | accuracy) of `history` (the list `Trainer.fit` returns)."""
    epochs = [logs["epoch"] for logs in history]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(epochs, [logs[metric] for logs in history], "o-", label=f"train {metric}")
        if history and f"val_{metric}" in history[0]:
            axis.plot(epochs, [logs[f"val_{metric}"] for logs in history], "s--", label=f"validation {metric}")
    _save(figure, axes, path, title)


def plot_parity(epochs: Sequence[Dict[str, float]], path: str, title: str = "") -> None:
    """Writes a PNG of the engine's and Keras's curves overlaid (a `ParityReport.epochs` list).

    Solid lines are the engine, dashed markers Keras: where the two agree, the markers sit on
    the lines.
    """
    numbers = [row["epoch"] for row in epochs]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for split, label in (("", "train"), ("test_", "test")):
            line, = axis.plot(numbers, [row[f"engine_{split}{metric}"] for row in epochs], "-",
                              label=f"engine {label} {metric}")
            axis.plot(numbers, [row[f"keras_{split}{metric}"] for row in epochs], "x--",
                      color=line.get_color(), markersize=9, label=f"tf.keras {label} {metric}")
    _save(figure, axes, path, title)


def _save(figure, axes, path: str, title: str) -> None:
    """Labels the two panels (loss | accuracy per epoch) and writes the figure as a PNG."""
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

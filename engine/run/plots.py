"""The training figure: loss and accuracy per epoch, training and validation side by side."""

from typing import Dict, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def history_figure(history: Sequence[Dict[str, float]], title: str = "") -> Figure:
    """The two panels (loss | accuracy) of `history` (the list `Trainer.fit` returns)."""
    epochs = [logs["epoch"] for logs in history]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(epochs, [logs[metric] for logs in history], "o-", label=f"train {metric}")
        if history and f"val_{metric}" in history[0]:
            axis.plot(epochs, [logs[f"val_{metric}"] for logs in history], "s--", label=f"validation {metric}")
    _label(figure, axes, title)
    return figure


def parity_figure(epochs: Sequence[Dict[str, float]], title: str = "") -> Figure:
    """The engine's and Keras's curves overlaid (a `ParityReport.epochs` list).

    Solid lines with dots are the engine, dashed lines with crosses Keras: where the two agree,
    the crosses sit on the dots. Both have markers, so a one-epoch run (a single point per
    curve, no line to draw) still shows both sides.
    """
    numbers = [row["epoch"] for row in epochs]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for split, label in (("", "train"), ("test_", "test")):
            line, = axis.plot(numbers, [row[f"engine_{split}{metric}"] for row in epochs], "o-",
                              markersize=5, label=f"engine {label} {metric}")
            axis.plot(numbers, [row[f"keras_{split}{metric}"] for row in epochs], "x--",
                      color=line.get_color(), markersize=9, label=f"tf.keras {label} {metric}")
    _label(figure, axes, title)
    return figure


def plot_history(history: Sequence[Dict[str, float]], path: str, title: str = "") -> None:
    """Writes `history_figure` as a PNG."""
    save(history_figure(history, title), path)


def plot_parity(epochs: Sequence[Dict[str, float]], path: str, title: str = "") -> None:
    """Writes `parity_figure` as a PNG."""
    save(parity_figure(epochs, title), path)


def _label(figure: Figure, axes, title: str) -> None:
    """Labels the two panels (loss | accuracy per epoch); epochs are whole numbers, so are the ticks."""
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # not 1.2, 1.4, ..., nor 0.96 for 1 epoch
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()


def save(figure: Figure, path: str, dpi: int = 100) -> None:
    """Writes `figure` as a PNG and frees it."""
    figure.savefig(path, dpi=dpi)
    plt.close(figure)

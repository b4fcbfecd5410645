"""The training figures: loss and accuracy per epoch (one run, several runs, engine against Keras),
and one prediction beside its image."""

from typing import Dict, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from engine.run import writes


def new_figure(size: Tuple[float, float]) -> Figure:
    """A figure of `size` (inches) drawn by Agg, for files only: no pyplot, so no global backend to
    select at import, no display needed, and nothing to close (it is freed when dropped)."""
    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def history_figure(history: Sequence[Dict[str, float]], title: str = "") -> Figure:
    """The two panels (loss | accuracy) of `history` (the list `Trainer.fit` returns)."""
    epochs = [logs["epoch"] for logs in history]
    figure = new_figure((11, 4))
    axes = figure.subplots(1, 2)
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
    figure = new_figure((11, 4))
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for split, label in (("", "train"), ("test_", "test")):
            line, = axis.plot(numbers, [row[f"engine_{split}{metric}"] for row in epochs], "o-",
                              markersize=5, label=f"engine {label} {metric}")
            axis.plot(numbers, [row[f"keras_{split}{metric}"] for row in epochs], "x--",
                      color=line.get_color(), markersize=9, label=f"tf.keras {label} {metric}")
    _label(figure, axes, title)
    return figure


def plot_histories(histories: Dict[str, Sequence[Dict[str, float]]], path: str, title: str = "") -> None:
    """Writes a two-panel PNG (loss | accuracy) with one curve per run, to compare runs (batch sizes, widths).

    Each run's validation curve is drawn when it has one, else its training curve.
    """
    figure = new_figure((11, 4))
    axes = figure.subplots(1, 2)
    for label, history in histories.items():
        for axis, metric in zip(axes, ("loss", "accuracy")):
            key = f"val_{metric}" if f"val_{metric}" in history[0] else metric
            axis.plot([logs["epoch"] for logs in history], [logs[key] for logs in history], "o-",
                      label=label if key.startswith("val_") else f"{label} (training)")
    _label(figure, axes, title)
    save(figure, path)


def plot_prediction(image: np.ndarray, probabilities: Sequence[float], class_names: Sequence[str], path: str,
                    title: str = "") -> None:
    """Writes a PNG of one image [H, W] in [0, 1] beside the bar chart of a model's probabilities for it."""
    if len(probabilities) != len(class_names):
        raise ValueError(f"plot_prediction got {len(probabilities)} probabilities for {len(class_names)} class names: "
                         "expected one probability per class")
    figure = new_figure((9, 3.5))
    picture, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    picture.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    picture.axis("off")
    bars.barh(range(len(class_names)), probabilities)
    bars.set_yticks(range(len(class_names)), class_names)
    bars.invert_yaxis()  # class 0 at the top, as labels.txt lists them
    bars.set_xlim(0.0, 1.0)
    bars.set_xlabel("probability")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save(figure, path)


def plot_step_losses(losses: Sequence[float], path: str, title: str = "") -> None:
    """Writes a PNG of every step's batch loss, with its running mean over the last 50 steps."""
    figure = new_figure((8, 3.5))
    axis = figure.subplots()
    steps = np.arange(1, len(losses) + 1)
    axis.plot(steps, losses, lw=0.7, alpha=0.5, label="batch loss")
    window = min(50, len(losses))
    axis.plot(steps[window - 1:], np.convolve(losses, np.ones(window) / window, mode="valid"),
              label=f"mean of the last {window}")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    figure.tight_layout()
    save(figure, path)


def plot_gradient_check(errors: Dict[str, Sequence[float]], names: Sequence[str], path: str, bound: float = 1e-7,
                        title: str = "") -> None:
    """Writes a PNG of each tensor's largest relative error (log scale), one bar group per tensor and one
    colour per way to the gradient (`errors[way][i]` for `names[i]`), with the bound drawn across."""
    figure = new_figure((8, 3.5))
    axis = figure.subplots()
    width = 0.8 / max(len(errors), 1)
    for k, (way, values) in enumerate(errors.items()):
        axis.bar(np.arange(len(names)) + k * width, np.maximum(values, 1e-17), width, label=way)
    axis.axhline(bound, color="black", lw=0.8, ls="--", label=f"bound {bound:g}")
    axis.set_yscale("log")
    axis.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20, fontsize=8)
    axis.set_ylabel("max relative error")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title)
    figure.tight_layout()
    save(figure, path)


def plot_images(images: Sequence[np.ndarray], titles: Sequence[str], path: str, title: str = "") -> None:
    """Writes a PNG of 2-D arrays side by side (images, or small matrices shown as grey levels,
    each scaled to its own range), each with its title."""
    if len(images) != len(titles):
        raise ValueError(f"plot_images got {len(images)} images for {len(titles)} titles: expected one title each")
    figure = new_figure((2.2 * len(images), 2.6))
    axes = figure.subplots(1, len(images), squeeze=False)
    for axis, image, name in zip(axes[0], images, titles):
        axis.imshow(np.atleast_2d(image), cmap="gray")
        axis.set_title(name, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save(figure, path)


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
    """Writes `figure` as a PNG (whole, never through a link: engine/run/writes.py)."""
    writes.save_figure(figure, path, dpi)

"""The search's report: the ranked results as CSV and Markdown tables, and a plot."""

import csv
import os
import textwrap
from typing import Dict, List, Sequence

from matplotlib.figure import Figure

from engine.run import plots, writes

COLUMNS = ("rank", "hidden", "batch_size", "epochs", "optimizer", "learning_rate", "gradients", "accuracy", "accuracy_std",
           "loss", "seconds")


def _number(value, digits: int) -> str:
    """A score as text; None (what a diverged trial records for NaN) as 'diverged'."""
    return "diverged" if value is None else f"{value:.{digits}f}"


def rows(ranked: Sequence[Dict]) -> List[Dict]:
    """One flat row per trial, in rank order: its parameters, then its cross-validated scores."""
    return [{"rank": rank, "hidden": "-".join(map(str, record["params"]["hidden"])),
             **{name: record["params"][name] for name in ("batch_size", "epochs", "learning_rate")},
             "gradients": record["params"].get("gradients", "tape"), "optimizer": record["params"].get("optimizer", "sgd"),
             "accuracy": _number(record["accuracy"], 4), "accuracy_std": _number(record.get("accuracy_std"), 4),
             "loss": "diverged" if record.get("diverged") else _number(record["loss"], 4),
             "seconds": _number(record.get("seconds"), 1)}
            for rank, record in enumerate(ranked, 1)]


def write_csv(ranked: Sequence[Dict], path: str) -> None:
    with writes.atomic(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(ranked))


def markdown(ranked: Sequence[Dict], caption: str) -> str:
    """A Markdown table (GitHub style) of the ranked trials, under a one-line caption."""
    lines = [caption, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[name]) for name in COLUMNS) + " |" for row in rows(ranked)]
    return "\n".join(lines) + "\n"


def ranking_figure(ranked: Sequence[Dict], title: str) -> Figure:
    """Horizontal bars of mean cross-validated accuracy with the fold spread, best at the top.

    The title is wrapped and centred on the figure, not on the axes: the trial labels push the
    axes to the right, and a one-line caption centred there ran off the figure's right edge.
    """
    labels = [f"h {row['hidden']}, b {row['batch_size']}, e {row['epochs']}, {row['optimizer']} {row['learning_rate']:g}"
              for row in rows(ranked)]
    accuracies = [record["accuracy"] or 0.0 for record in ranked]  # a diverged trial: an empty bar
    spreads = [record.get("accuracy_std") or 0.0 for record in ranked]
    figure = plots.new_figure((9, 1.8 + 0.35 * len(ranked)))
    axis = figure.subplots()
    axis.barh(range(len(ranked)), accuracies, xerr=spreads, capsize=3)
    axis.set_yticks(range(len(ranked)), labels)
    axis.invert_yaxis()
    low = min(accuracies) - max(0.05, 2 * max(spreads))
    axis.set_xlim(max(0.0, low), min(1.0, max(accuracies) + 0.05))
    axis.set_xlabel("mean validation accuracy over folds (bar: ± one standard deviation)")
    figure.suptitle(textwrap.fill(title, width=80), fontsize=11)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def write(ranked: Sequence[Dict], output_dir: str, caption: str) -> str:
    """Writes ranking.md, ranking.csv and ranking.png into `output_dir`; returns the Markdown and what was written."""
    table = markdown(ranked, caption)
    writes.write_text(os.path.join(output_dir, "ranking.md"), table)
    write_csv(ranked, os.path.join(output_dir, "ranking.csv"))
    plots.save(ranking_figure(ranked, caption), os.path.join(output_dir, "ranking.png"), dpi=120)
    return table + f"Wrote {output_dir}/ranking.csv, ranking.md, ranking.png and results.json"

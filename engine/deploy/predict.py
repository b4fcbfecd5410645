"""Classify images with an exported model, from the command line.

    python -m engine.deploy.predict --model=runs/export/saved_model --images=t10k-images-idx3-ubyte.gz
    python -m engine.deploy.predict --model=runs/export/model.tflite --images=shirt.png,boot.png --csv=out.csv

Prints what it read (the model, how many images), then a table of the first `--limit` images
(default 20; 0 prints all): where each came from, the class number, its name (labels.txt
beside the model) and its probability; then how many images went to each class. `--csv`
writes every image's row, with every class's probability, to a file.

What it reads, and how: engine/deploy/image_files.py (IDX files scaled by /255; PNG files of
exactly the model's size, never resized nor inverted).

A missing file, an image of the wrong size or a path that is not a model (or a cut one, or a
mixed export) gets one `predict: error: ...` line and exit status 2, and so does a `--csv` that
is one of the inputs (`--csv=EXPORT/model.tflite`), a link or a directory, said before anything
is read; a `--csv` that cannot be written (a full disk) one line and exit status 1. The CSV is
written whole or not at all (engine/run/writes.py): the old file stays until the new is complete.
"""

import csv
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from absl import flags

from engine.deploy.manifest import LABELS, MANIFEST
from engine.errors import ConfigError, DataError
from engine import startup
from engine.run import cli, program, writes
from engine.run.faults import RunFault, printable

PROGRAM = "predict"
FLAGS = cli.new_flag_values()
flags.DEFINE_string("model", None, "An export's saved_model directory or model.tflite file (required). Loading "
                    "a SavedModel runs the program it holds (TensorFlow's own caveat): pass only models you trust.",
                    flag_values=FLAGS)
flags.DEFINE_list("images", None, "IDX files (*.gz or not) or PNG images, comma-separated (required).",
                  flag_values=FLAGS)
flags.DEFINE_integer("limit", 20, "Print the first N images' predictions; 0 prints all.", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_string("csv", None, "Also write every image's prediction to this CSV file.", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def check_csv(path: str, model: str, images: Sequence[str]) -> None:
    """Refuses, before anything is read, a `--csv` that is an input, a link or a directory, or cannot be made.

    Raises:
      DataError: what is wrong, said by `writes.check_destination`.
    """
    export = Path(model).parent
    try:
        writes.check_destination(path, "--csv", [model, *images, str(export / LABELS), str(export / MANIFEST)])
    except ConfigError as error:
        raise DataError(str(error)) from None


def write_csv(path: str, sources: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str]) -> None:
    """One row per image: source, class, name, probability, then every class's probability."""
    try:
        with writes.destination(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["source", "class", "name", "probability", *(f"p_{name}" for name in class_names)])
            for source, row in zip(sources, probabilities):
                best = int(row.argmax())
                writer.writerow([source, best, class_names[best], f"{row[best]:.6f}", *(f"{p:.6f}" for p in row)])
    except OSError as error:  # a full disk, a directory that vanished since `check_csv`
        raise CsvError(f"--csv {path} could not be written whole ({error.strerror}): free some space, or pass "
                       "another file path") from None


class CsvError(RunFault):
    """The predictions could not be written: the environment's fault, not the input's (exit status 1)."""


def print_predictions(sources: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str],
                      limit: int) -> None:
    """The table of the first `limit` images (0: all), then how many images each class got."""
    best = probabilities.argmax(axis=1)  # [N]
    shown = len(sources) if limit == 0 else min(limit, len(sources))
    print("source\tclass\tname\tprobability")
    for source, row, label in zip(sources[:shown], probabilities, best):
        print(printable(f"{source}\t{label}\t{class_names[label]}\t{row[label]:.4f}"))
    if shown < len(sources):
        print(f"... {len(sources) - shown:,} more (--limit=0 prints all; --csv=FILE writes all)")
    print("Per class: images predicted, share, mean probability of the predicted class")
    for label, name in enumerate(class_names):
        chosen = best == label
        mean = f"{probabilities[chosen, label].mean():.4f}" if chosen.any() else "-"
        print(printable(f"  {label:>3} {name:<20} {int(chosen.sum()):>7,} {chosen.mean():6.1%}  {mean}"))


def classify() -> int:
    """The prediction the parsed FLAGS describe: checked, read, classified, printed; returns 0."""
    missing = [f"--{name}" for name in ("model", "images") if not FLAGS[name].value]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be given, e.g. --model=runs/export/model.tflite "
                          "--images=t10k-images-idx3-ubyte.gz")
    if FLAGS.csv:
        check_csv(FLAGS.csv, FLAGS.model, FLAGS.images)
    startup.import_tensorflow()
    from engine.deploy.image_files import read_images
    from engine.deploy.serving import Classifier

    classifier = Classifier(FLAGS.model)
    images, sources = read_images(FLAGS.images, classifier.image_shape)
    probabilities = classifier.predict(images)
    if FLAGS.csv:
        write_csv(FLAGS.csv, sources, probabilities, classifier.class_names)
    print(printable(f"Model: {FLAGS.model}, {len(classifier.class_names)} classes, images {classifier.image_shape}; "
                    f"{len(sources):,} images from {len(FLAGS.images)} file{'s' if len(FLAGS.images) > 1 else ''}"
                    f"{f'; all written to {FLAGS.csv}' if FLAGS.csv else ''}"))
    print_predictions(sources, probabilities, classifier.class_names, FLAGS.limit)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line (argv[0] is the program); returns the exit status (README lists them)."""
    return program.run(PROGRAM, FLAGS, argv, classify)


if __name__ == "__main__":
    sys.exit(main())

"""Classify images with an exported model, from the command line.

    python -m engine.deploy.predict --model runs/export/saved_model --images t10k-images-idx3-ubyte.gz
    python -m engine.deploy.predict --model runs/export/model.tflite --images shirt.png boot.png --csv out.csv

Prints one line per image: where it came from, the class number, its name (labels.txt beside
the model) and its probability; `--csv` also writes them to a file.

What it reads, and how:
- IDX files (any name but *.png; gzipped if *.gz): uint8 images [N, H, W] (or one [H, W]),
  scaled to [0, 1] by /255, as training saw them.
- PNG files: decoded with `tf.io.decode_png` to as many channels as the model takes — one for
  MNIST-like models, colour turned to grey by TensorFlow's luminance weights — and scaled by
  /255. They are not resized: a PNG must already be exactly the model's size (28x28 for
  MNIST), since a silently shrunk photo would be classified with confidence and wrongly. The
  size is read from the PNG's header before anything is decoded: a 20000x20000 PNG is refused
  in microseconds, not after 1.5 GB of pixels.
  Nor are they inverted: Fashion-MNIST and MNIST are light objects on a black background.

A missing file, an image of the wrong size or a path that is not a model (or a cut one) gets
one `predict: error: ...` line and exit status 2; a `--csv` that cannot be written (a full
disk) one line and exit status 1.
"""

import argparse
import csv
import os
import struct
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from engine.errors import DataError  # noqa: E402
from engine.data.idx import read_idx  # noqa: E402
from engine.deploy.serving import Classifier  # noqa: E402
from engine.run.faults import one_line  # noqa: E402


def read_images(paths: Sequence[str], image_shape: Tuple[int, ...]) -> Tuple[np.ndarray, List[str]]:
    """Float32 images [N, *image_shape] in [0, 1] from IDX and PNG files, and a source label for each."""
    batches, sources = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"--images {path} does not exist: pass IDX or PNG image files")
        if path.suffix.lower() == ".png":
            images, names = _read_png(path, image_shape), [str(path)]
        else:
            images = _read_idx_images(path, image_shape)
            names = [f"{path}[{index}]" for index in range(len(images))]  # the image's index in the file
        batches.append(images.astype(np.float32) / 255.0)
        sources += names
    return np.concatenate(batches), sources


def _read_png(path: Path, image_shape: Tuple[int, ...]) -> np.ndarray:
    channels = image_shape[2] if len(image_shape) == 3 else 1
    with open(path, "rb") as file:
        header = file.read(24)  # signature (8), IHDR length and type (8), width and height (8)
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise DataError(f"--images {path} is not a readable PNG image")
    width, height = struct.unpack(">II", header[16:24])
    if (height, width) != tuple(image_shape[:2]):
        raise DataError(f"--images {path} is {width}x{height} pixels, the model takes "
                        f"{image_shape[1]}x{image_shape[0]}: resize it first")
    try:
        image = tf.io.decode_png(tf.io.read_file(str(path)), channels=channels).numpy()  # [H, W, channels]
    except tf.errors.InvalidArgumentError:
        raise DataError(f"--images {path} is not a readable PNG image") from None
    if image.shape[:2] != tuple(image_shape[:2]):
        raise DataError(f"--images {path} is {image.shape[1]}x{image.shape[0]} pixels, the model takes "
                        f"{image_shape[1]}x{image_shape[0]}: resize it first")
    return image.reshape((1, *image_shape))


def _read_idx_images(path: Path, image_shape: Tuple[int, ...]) -> np.ndarray:
    images = read_idx(path)  # raises a one-line IdxError for anything that is not a complete IDX file
    if images.shape == image_shape:
        images = images[np.newaxis]
    if images.shape[1:] != image_shape or images.dtype != np.uint8:
        raise DataError(f"--images {path} holds {images.dtype} images of shape {images.shape[1:]}, the model "
                        f"takes uint8 images of shape {image_shape}")
    return images


def write_csv(path: str, sources: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str]) -> None:
    """One row per image: source, class, name, probability, then every class's probability."""
    try:
        file = open(path, "w", newline="")
    except OSError as error:
        raise DataError(f"--csv {path} cannot be written ({error.strerror}): pass a writable file path") from None
    try:
        with file:
            writer = csv.writer(file)
            writer.writerow(["source", "class", "name", "probability", *(f"p_{name}" for name in class_names)])
            for source, row in zip(sources, probabilities):
                best = int(row.argmax())
                writer.writerow([source, best, class_names[best], f"{row[best]:.6f}", *(f"{p:.6f}" for p in row)])
    except OSError as error:  # a full disk shows only when the rows are flushed
        raise CsvError(f"--csv {path} could not be written whole ({error.strerror}): free some space, or pass "
                       "another file path") from None


class CsvError(OSError):
    """The predictions could not be written: the environment's fault, not the input's (exit status 1)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0, or 2 after one error line)."""
    parser = argparse.ArgumentParser(prog="predict", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an export's saved_model directory or model.tflite file")
    parser.add_argument("--images", required=True, nargs="+", help="IDX files (*.gz or not) or PNG images")
    parser.add_argument("--csv", help="also write the predictions to this CSV file")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model)
        images, sources = read_images(args.images, classifier.image_shape)
        probabilities = classifier.predict(images)
        if args.csv:
            write_csv(args.csv, sources, probabilities, classifier.class_names)
    except DataError as error:
        print(f"predict: error: {one_line(error)}", file=sys.stderr)
        return 2
    except CsvError as error:
        print(f"predict: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("predict: stopped by SIGINT", file=sys.stderr)
        return 130
    for source, row in zip(sources, probabilities):
        best = int(row.argmax())
        print(f"{source}\t{best}\t{classifier.class_names[best]}\t{row[best]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

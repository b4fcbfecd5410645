"""Images for a classifier, from IDX and PNG files, as `python -m engine.deploy.predict` reads them.

- IDX files (any name but *.png; gzipped if *.gz): uint8 images [N, H, W] (or one [H, W]),
  scaled to [0, 1] by /255, as training saw them.
- PNG files: decoded with `tf.io.decode_png` to as many channels as the model takes — one for
  MNIST-like models, colour turned to grey by TensorFlow's luminance weights — and scaled by
  /255. They are not resized: a PNG must already be exactly the model's size (28x28 for
  MNIST), since a silently shrunk photo would be classified with confidence and wrongly. The
  size is read from the PNG's header before anything is decoded: a 20000x20000 PNG is refused
  in microseconds, not after 1.5 GB of pixels.
  Nor are they inverted: Fashion-MNIST and MNIST are light objects on a black background.
"""

import struct
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from engine.data.idx import read_idx
from engine.errors import DataError


def read_images(paths: Sequence[str], image_shape: Tuple[int, ...]) -> Tuple[np.ndarray, List[str]]:
    """Float32 images [N, *image_shape] in [0, 1] from IDX and PNG files, and a source label for each."""
    batches, sources = [], []
    for path in map(Path, paths):
        if path.is_dir():
            raise DataError(f"--images {path} is a directory: pass the IDX or PNG image files in it, "
                            "comma-separated")
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

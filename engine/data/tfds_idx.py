"""A TFDS builder of our own for MNIST-format IDX files that are already on disk.

Why not TFDS's `mnist` / `fashion_mnist` builders: they check each download's sha256
against TFDS's registry of the original `.gz` files, and they do so for files put in
`manual_dir` too. The copies this project has offline — Debian's `dataset-fashion-mnist`
in `/usr/share/datasets/fashion-mnist/` and the shared MNIST test set — hold the same
pixels and labels, but were recompressed, so their `.gz` bytes (and sha256) differ and the
official builders reject them. This builder reads the IDX files themselves instead, checks
their contents (`engine.data.idx.read_idx`, then counts, shapes and label range), and writes them
through the real TFDS machinery: prepared once into a TFDS data dir, then read back with
`as_dataset` like any other TFDS dataset.

Prepared data must not go stale when the files change, so each set of source files gets its
own TFDS data dir, `<tfds_dir>/scratchflow_idx/<fingerprint>/`, keyed by the sha256 of the
four files' bytes. Content rather than size+mtime: copying or re-extracting files changes
their mtime without changing the data (a needless re-prepare), and a same-size rewrite within
the filesystem's mtime resolution would go unnoticed (stale data). Hashing Fashion-MNIST's
30 MB takes well under a second, small next to reading the prepared dataset back.

The image feature is a `Tensor` stored as raw bytes: it prepares 70,000 images about 3x
faster than `Image` (which PNG-encodes each one) and reads back at least as fast.
"""

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from engine.errors import DataError
from engine.data.idx import read_idx

# Split -> (images, labels) file names, without the optional `.gz`.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FILES = tuple(name for pair in SPLIT_FILES.values() for name in pair)
IMAGE_SHAPE = (28, 28)


@dataclasses.dataclass
class IdxConfig(tfds.core.BuilderConfig):
    """One dataset in IDX format: its name is the config's, its classes are `class_names`."""

    class_names: tuple[str, ...] = ()


class IdxImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """MNIST-format IDX files in `manual_dir` -> TFDS 'train' and 'test' splits.

    Not registered with TFDS (so `tfds.builder("idx_images")` does not find it): it is only
    ever built by `idx_builder`, which knows where the files are.
    """

    VERSION = tfds.core.Version("1.0.0")  # bump when what is written changes: TFDS keys by it
    BUILDER_CONFIGS = [
        IdxConfig(name="mnist", class_names=tuple(str(digit) for digit in range(10))),
        IdxConfig(
            name="fashion_mnist",
            class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
    ]
    # TFDS looks up a downloading builder's URL checksums next to its code, and on the way
    # imports `importlib_resources`, which TFDS 4.9.10 does not install on Python >= 3.9
    # (tensorflow/datasets#11212). This builder downloads nothing: no checksums to look up.
    url_infos = None
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"The four IDX files {', '.join(IDX_FILES)}, each may be .gz."

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(*IMAGE_SHAPE, 1), dtype=np.uint8,
                                              encoding=tfds.features.Encoding.BYTES),
                "label": tfds.features.ClassLabel(names=self.builder_config.class_names),
            }),
            supervised_keys=("image", "label"),
            # Keep the files' order (TFDS would shuffle examples by key when writing): the
            # same data in the same order as `keras.datasets.mnist.load_data()`.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        # Read and check every file before TFDS writes anything: an error raised here
        # reaches the caller as is, while one raised inside a generator gets wrapped.
        files = find_idx_files(dl_manager.manual_dir)
        num_classes = len(self.builder_config.class_names)
        splits = {split: read_split(files, split, num_classes) for split in SPLIT_FILES}
        return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[..., np.newaxis], "label": int(label)}


def find_idx_files(directory: str | os.PathLike) -> dict[str, Path]:
    """Maps each standard IDX file name to its path in `directory`, preferring `.gz`.

    Raises:
      DataError: `directory` is missing, or lacks some of the four files (all are named).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory; expected one holding the four IDX "
                        f"files {', '.join(IDX_FILES)} (each may be .gz)")
    found, missing = {}, []
    for name in IDX_FILES:
        candidates = [directory / (name + ".gz"), directory / name]
        path = next((path for path in candidates if path.is_file()), None)
        if path is None:
            missing.append(f"{name}(.gz)")
        else:
            found[name] = path
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)}; expected all four IDX "
                        "files of the dataset (train-* and t10k-*, images and labels)")
    return found


def read_split(files: dict[str, Path], split: str, num_classes: int,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split's images [N, 28, 28] uint8 and labels [N] uint8, checked for training.

    Raises:
      DataError: a file is corrupt, not uint8, the wrong shape, empty, the counts disagree,
        or a label is not below `num_classes`.
    """
    image_path, label_path = (files[name] for name in SPLIT_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{image_path}: expected uint8 images of shape [N, 28, 28], got "
                        f"{images.dtype} of shape {list(images.shape)}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{label_path}: expected uint8 labels of shape [N], got "
                        f"{labels.dtype} of shape {list(labels.shape)}")
    if len(images) == 0:
        raise DataError(f"{image_path}: holds 0 images: an empty data set cannot be trained or "
                        "evaluated on; expected at least one")
    if len(images) != len(labels):
        raise DataError(f"{label_path}: count mismatch: {len(labels)} labels for "
                        f"{len(images)} images in {image_path.name}")
    if len(labels) and labels.max() >= num_classes:
        index = int(np.argmax(labels >= num_classes))
        raise DataError(f"{label_path}: label out of range: label {labels[index]} at index "
                        f"{index}, expected 0..{num_classes - 1}")
    return images, labels


def fingerprint(paths: list[Path]) -> str:
    """The first 16 hex digits of the sha256 of the files' bytes, in the given order.

    Raises:
      DataError: a file cannot be read (permissions, an I/O error), named.
    """
    digest = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as file:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as error:
            raise DataError(f"{path}: cannot read ({error.strerror or error}): fix its permissions, "
                            "or pass another --data_dir") from None
    return digest.hexdigest()[:16]


def idx_fingerprint(source_dir: str | os.PathLike) -> str:
    """The fingerprint naming the prepared copy of the IDX files in `source_dir`."""
    return fingerprint(list(find_idx_files(source_dir).values()))


def idx_builder(name: str, source_dir: str | os.PathLike, tfds_dir: str | os.PathLike,
                ) -> IdxImages:
    """The builder of dataset `name` from the IDX files in `source_dir`.

    Its TFDS data dir is `<tfds_dir>/scratchflow_idx/<fingerprint of the files>/`, so it is
    prepared once per set of files. Prepare it with
    `download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=source_dir))`.

    Raises:
      DataError: `source_dir` lacks some of the four files.
    """
    data_dir = Path(tfds_dir) / "scratchflow_idx" / idx_fingerprint(source_dir)
    return IdxImages(config=name, data_dir=data_dir)

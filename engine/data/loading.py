"""Image-classification data as NumPy arrays, from local IDX files or TensorFlow Datasets.

`load` takes the first route that works, and says which in the result's `source`:

1. mnist / fashion_mnist from IDX files on disk (`data_dir`, or for Fashion-MNIST Debian's
   copy): checked, prepared once with the project's TFDS builder (`engine.data.tfds_idx`, which
   explains why TFDS's own builders cannot take these files), then read back from TFDS.
2. Any TFDS image-classification dataset already prepared in `tfds_dir`.
3. A TFDS download, but only after a 3-second TCP probe: offline, TFDS would retry for
   minutes before failing, and this way we fail in seconds.
4. Offline: the `fallback` dataset if it is available locally, announced with one `log`
   line; else a `DataError` naming the ways to get the data.

The result carries a `fingerprint` of its content (train and test, images and labels): a
checkpoint or a search's results are tied to it, so that other data of the same size is refused
rather than silently mixed in. A prepared copy of IDX files that no longer reads back (a cut or
corrupted TFRecord) is rebuilt from the files, with a line saying so.
"""

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from google.protobuf import json_format

from engine.data import network, tfds_idx
from engine.errors import DataError
from engine.run import directories, quiet

# Where `apt-get install dataset-fashion-mnist` puts the four IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_DATASETS = tuple(config.name for config in tfds_idx.IdxImages.BUILDER_CONFIGS)


@dataclasses.dataclass(frozen=True)
class ImageClassificationData:
    """A train and a test split of images with integer class labels.

    Images are float32 in [0, 1], [N, H, W] for one channel (squeezed) or [N, H, W, C].
    """

    name: str  # the dataset actually loaded, e.g. "fashion_mnist" after a fallback
    source: str  # one human line: where the data came from, and by which route
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray  # int32 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    fingerprint: str = ""  # sha256 (16 hex digits) of the splits' pixels and labels as stored

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images.shape[1:])


class _Offline(DataError):
    """The dataset is neither on disk nor prepared, and the network is unreachable."""


def load(name: str, data_dir: str | None = None, tfds_dir: str | None = None,
         fallback: str | None = None, log: Callable[[str], None] = print,
         ) -> ImageClassificationData:
    """Loads dataset `name` by the first route that works (see the module docstring).

    Args:
      name: "mnist", "fashion_mnist", or another TFDS image-classification dataset
        ("kmnist", "cifar10", ...).
      data_dir: a directory holding the four IDX files of mnist or fashion_mnist.
      tfds_dir: the TFDS data directory; default TFDS's own (`~/tensorflow_datasets`).
      fallback: a dataset to load instead when `name` needs a download and there is no
        network; train.py passes one only when the user did not choose the dataset.
      log: receives one line when a fallback is taken, or a long preparation starts.

    Raises:
      DataError: the dataset is unknown, not image classification, its files are missing
        or corrupt, or it is not available offline (and neither is `fallback`).
    """
    tfds.disable_progress_bar()
    name = name.strip().lower()  # TFDS's names are lower case; a user's may not be
    with _quiet_logs():
        try:
            return _load(name, data_dir, tfds_dir, log)
        except _Offline as offline:
            where = _available_offline(fallback, tfds_dir) if fallback else None
            if where is None:
                raise DataError(f"{offline}; options: {_options(name)}") from None
            hint = (f"--data_dir=DIR holding {name}'s IDX files" if name in _IDX_DATASETS
                    else "a machine with internet access")
            log(f"{offline}; falling back to {fallback} from {where} — pass "
                f"--dataset={fallback} to choose it explicitly, or {hint}")
            data = _load(fallback, None, tfds_dir, log)
            return dataclasses.replace(data, source=f"fallback for {name} (offline): {data.source}")


def _load(name: str, data_dir: str | None, tfds_dir: str | None,
          log: Callable[[str], None]) -> ImageClassificationData:
    directory = _idx_dir(name, data_dir)
    if directory is not None:
        tfds_root = Path(tfds_dir or tfds.core.constants.DATA_DIR)
        try:
            return _read_idx_route(name, directory, tfds_root, log)
        except (tf.errors.OpError, OSError, ValueError, json_format.Error) as error:  # Error: a garbage dataset_info.json
            if isinstance(error, DataError) or getattr(error, "errno", None) == errno.ENOSPC:
                raise
            if getattr(error, "errno", None) in (errno.ENOTDIR, errno.EACCES, errno.EROFS, errno.EPERM):
                raise DataError(f"{tfds_root} cannot hold the prepared copy of {name} ({error.strerror}): pass "
                                "--tfds_dir=DIR, a writable directory") from None  # not damaged: unwritable
            prepared = tfds_root / "scratchflow_idx" / tfds_idx.idx_fingerprint(directory)
            log(f"The prepared copy of {name} in {prepared} is damaged ({type(error).__name__}); "
                "preparing it again from the IDX files")
            with contextlib.suppress(OSError):
                directories.remove_tree(prepared)
            return _read_idx_route(name, directory, tfds_root, log)
    builder = _tfds_builder(name, tfds_dir)
    if builder.is_prepared():
        try:
            return _read(name, builder, f"TFDS {name}, prepared in {builder.data_dir}")
        except tf.errors.OpError as error:
            raise DataError(f"{name}: the prepared copy in {builder.data_dir} does not read back "
                            f"({type(error).__name__}): delete it (rm -r {builder.data_dir}) and run "
                            "again to prepare it anew") from None
    if not network.reachable(network.TFDS_HOST):
        idx = "no IDX files (--data_dir), " if name in _IDX_DATASETS else ""
        raise _Offline(f"{name} is not available offline ({idx}not prepared in "
                       f"{builder.data_dir_root}, and TFDS's download needs network: "
                       f"{network.TFDS_HOST[0]}:{network.TFDS_HOST[1]} is unreachable)")
    log(f"Downloading and preparing {name} with TFDS into {builder.data_dir} (once)")
    with _no_stdout():
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return _read(name, builder, f"TFDS {name}, downloaded now into {builder.data_dir}")


def _read_idx_route(name: str, directory: Path, tfds_root: Path,
                    log: Callable[[str], None]) -> ImageClassificationData:
    builder = tfds_idx.idx_builder(name, directory, tfds_root)
    how = "reused"
    if not builder.is_prepared():
        log(f"Preparing {name} from {directory} for TFDS in {builder.data_dir} (once for "
            "these files)")
        try:
            with _no_stdout():
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                    manual_dir=os.fspath(directory), try_download_gcs=False))
        except (RuntimeError, tf.errors.OpError) as error:  # TFDS wraps a full disk in a RuntimeError
            if "space left" in str(error) or "ResourceExhausted" in str(error):
                raise OSError(errno.ENOSPC, "No space left on device", os.fspath(builder.data_dir)) from None
            raise
        how = "prepared now"
    return _read(name, builder, f"IDX files in {directory}, via TFDS ({how}) in {builder.data_dir}")


def _idx_dir(name: str, data_dir: str | None) -> Path | None:
    """The directory of `name`'s IDX files: `data_dir` (which must hold them), Debian's, or None."""
    if data_dir is not None:
        if name not in _IDX_DATASETS:
            raise DataError(f"--data_dir={data_dir}: IDX files are read for "
                            f"{' and '.join(_IDX_DATASETS)} only, got dataset {name}")
        tfds_idx.find_idx_files(data_dir)  # raises, naming the missing files
        return Path(data_dir)
    if name == "fashion_mnist":
        with contextlib.suppress(DataError):
            tfds_idx.find_idx_files(DEBIAN_FASHION_MNIST)
            return DEBIAN_FASHION_MNIST
    return None


def _tfds_builder(name: str, tfds_dir: str | None) -> tfds.core.DatasetBuilder:
    """TFDS's builder for `name`, checked to be image classification with fixed-size images."""
    try:
        builder = tfds.builder(name, data_dir=tfds_dir, try_gcs=False)
    except tfds.core.DatasetNotFoundError:
        raise DataError(f"unknown dataset {name!r}: expected mnist, fashion_mnist or another "
                        "TFDS image-classification dataset (see tfds.list_builders())") from None
    except (ValueError, AssertionError) as error:  # a config or a version TFDS does not have
        reason = str(error).split("}\": ", 1)[-1].split(" Here are ")[0].strip()
        raise DataError(f"--dataset={name}: {reason} Pass {name.split('/')[0].split(':')[0]} alone for its "
                        "default config and version") from None
    features = builder.info.features
    image, label = (features[key] if key in features else None for key in ("image", "label"))
    if not (isinstance(image, tfds.features.Image)
            and isinstance(label, tfds.features.ClassLabel)):
        found = {key: type(feature).__name__ for key, feature in features.items()}
        raise DataError(f"{name} is not an image-classification dataset: expected features "
                        f"'image' (Image) and 'label' (ClassLabel), got {found}")
    if None in image.shape or image.np_dtype != np.uint8:
        raise DataError(f"{name}: expected fixed-size uint8 images, got "
                        f"{np.dtype(image.np_dtype).name} images of shape {image.shape}")
    return builder


def _read(name: str, builder: tfds.core.DatasetBuilder, source: str) -> ImageClassificationData:
    """Reads the prepared 'train' and 'test' splits whole, scaled to float32 in [0, 1]."""
    missing = {"train", "test"} - set(builder.info.splits)
    if missing:
        raise DataError(f"{name}: no {' or '.join(sorted(missing))} split; "
                        f"it has {', '.join(builder.info.splits)}")
    arrays, digest = {}, hashlib.sha256()
    for split in ("train", "test"):
        batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        digest.update(np.ascontiguousarray(batch["image"]).tobytes())
        digest.update(np.ascontiguousarray(batch["label"], np.int64).tobytes())
        images = batch["image"].astype(np.float32)  # [N, H, W, C]
        images /= 255.0  # in place: for CIFAR-10 a second copy would be 600 MB
        arrays[f"{split}_images"] = images[..., 0] if images.shape[-1] == 1 else images
        arrays[f"{split}_labels"] = batch["label"].astype(np.int32)
    return ImageClassificationData(name=name, source=source,
                                   class_names=tuple(builder.info.features["label"].names),
                                   fingerprint=digest.hexdigest()[:16], **arrays)


def _available_offline(name: str, tfds_dir: str | None) -> str | None:
    """Where `name` can be loaded from without network, or None."""
    directory = _idx_dir(name, None)
    if directory is not None:
        return str(directory)
    builder = _tfds_builder(name, tfds_dir)
    return os.fspath(builder.data_dir) if builder.is_prepared() else None


def _options(name: str) -> str:
    idx = "--data_dir=DIR with the four IDX files, " if name in _IDX_DATASETS else ""
    return (f"{idx}--dataset=fashion_mnist after `apt-get install dataset-fashion-mnist`, "
            "or a machine with internet access")


@contextlib.contextmanager
def _quiet_logs():
    """Hides TFDS's INFO and WARNING lines (absl logs them; the CLI prints its own progress)."""
    with quiet.absl_verbosity("error"):
        yield


def _no_stdout():
    """Swallows the 'Downloading and preparing...' lines TFDS prints while preparing."""
    return contextlib.redirect_stdout(io.StringIO())

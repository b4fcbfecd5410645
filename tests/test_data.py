"""engine.data.loading.load: real IDX files through real TFDS (no mocks), bad input, and offline."""

import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import loading, network
from engine.errors import DataError
from engine.data.idx import read_idx, write_idx
from tests.conftest import MNIST_T10K

needs_fashion_mnist = pytest.mark.skipif(
    not loading.DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"no {loading.DEBIAN_FASHION_MNIST} (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def t10k():
    """Real MNIST digits (the repository's 2,500): uint8 images [2500, 28, 28], labels [2500]."""
    return (read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz"),
            read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz"))


@pytest.fixture(scope="module")
def mnist_files(tmp_path_factory, t10k):
    """Real MNIST digits as a dataset: the first 2000 as train-*, the last 500 as t10k-*."""
    directory = tmp_path_factory.mktemp("mnist_files")
    images, labels = t10k
    write_idx(directory / "train-images-idx3-ubyte.gz", images[:2000])
    write_idx(directory / "train-labels-idx1-ubyte.gz", labels[:2000])
    write_idx(directory / "t10k-images-idx3-ubyte.gz", images[2000:])
    write_idx(directory / "t10k-labels-idx1-ubyte", labels[2000:])  # raw IDX works too
    return directory


@pytest.fixture
def mnist_dir(tmp_path, mnist_files):
    """A fresh copy of `mnist_files` that a test may damage (gzip-writing it anew takes seconds)."""
    return Path(shutil.copytree(mnist_files, tmp_path / "idx"))


@pytest.fixture
def offline(monkeypatch):
    """Points the network probe at a local port nobody listens on."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setattr(network, "TFDS_HOST", ("127.0.0.1", port))


def prepared_dirs(tfds_dir: Path) -> list[Path]:
    return sorted(tfds_dir.glob("scratchflow_idx/*/idx_images/mnist/1.0.0"))


def test_idx_files_are_prepared_once_with_tfds_and_read_back_exactly(mnist_dir, tmp_path, t10k):
    tfds_dir, logs = tmp_path / "tfds", []
    start = time.perf_counter()
    first = loading.load("mnist", data_dir=str(mnist_dir), tfds_dir=str(tfds_dir), log=logs.append)
    first_s = time.perf_counter() - start

    images, labels = t10k
    assert first.name == "mnist" and first.class_names == tuple("0123456789")
    assert first.num_classes == 10 and first.image_shape == (28, 28)
    assert first.train_images.shape == (2000, 28, 28) and first.train_images.dtype == np.float32
    assert first.test_images.shape == (500, 28, 28) and first.test_labels.dtype == np.int32
    assert first.train_images.min() == 0.0 and first.train_images.max() == 1.0
    np.testing.assert_array_equal(first.train_images, images[:2000].astype(np.float32) / 255)
    np.testing.assert_array_equal(first.train_labels, labels[:2000])  # same order as the files
    np.testing.assert_array_equal(first.test_labels, labels[2000:])
    assert f"IDX files in {mnist_dir}" in first.source and "prepared now" in first.source
    assert len(logs) == 1 and logs[0].startswith("Preparing mnist from")
    [prepared] = prepared_dirs(tfds_dir)
    written = {path: path.stat().st_mtime_ns for path in prepared.iterdir()}

    start = time.perf_counter()
    second = loading.load("mnist", data_dir=str(mnist_dir), tfds_dir=str(tfds_dir), log=logs.append)
    assert time.perf_counter() - start < first_s
    assert "reused" in second.source and len(logs) == 1
    assert {path: path.stat().st_mtime_ns for path in prepared.iterdir()} == written
    np.testing.assert_array_equal(second.train_images, first.train_images)


def test_changed_files_are_prepared_again(mnist_dir, tmp_path, t10k):
    tfds_dir = tmp_path / "tfds"
    loading.load("mnist", data_dir=str(mnist_dir), tfds_dir=str(tfds_dir), log=lambda line: None)
    flipped = 9 - t10k[1][:2000]  # same size, same header: only the content differs
    write_idx(mnist_dir / "train-labels-idx1-ubyte.gz", flipped)
    changed = loading.load("mnist", data_dir=str(mnist_dir), tfds_dir=str(tfds_dir),
                        log=lambda line: None)
    assert "prepared now" in changed.source
    np.testing.assert_array_equal(changed.train_labels, flipped)
    assert len(prepared_dirs(tfds_dir)) == 2


def remove_test_labels(directory: Path, labels: np.ndarray) -> None:
    (directory / "t10k-labels-idx1-ubyte").unlink()


def drop_a_train_label(directory: Path, labels: np.ndarray) -> None:
    write_idx(directory / "train-labels-idx1-ubyte.gz", labels[:1999])


def add_label_10(directory: Path, labels: np.ndarray) -> None:
    bad = labels[:2000].copy()
    bad[3] = 10
    write_idx(directory / "train-labels-idx1-ubyte.gz", bad)


def crop_test_images(directory: Path, labels: np.ndarray) -> None:
    write_idx(directory / "t10k-images-idx3-ubyte.gz", np.zeros((500, 28, 27), np.uint8))


def corrupt_train_images(directory: Path, labels: np.ndarray) -> None:
    (directory / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")


@pytest.mark.parametrize("damage, problem", [
    (remove_test_labels,
     r"idx: missing t10k-labels-idx1-ubyte\(\.gz\); expected all four IDX files"),
    (drop_a_train_label, "train-labels-idx1-ubyte.gz: count mismatch: 1999 labels for 2000 images"),
    (add_label_10,
     r"train-labels-idx1-ubyte.gz: label out of range: label 10 at index 3, expected 0\.\.9"),
    (crop_test_images,
     r"t10k-images-idx3-ubyte.gz: expected uint8 images of shape \[N, 28, 28\], got uint8 of"),
    (corrupt_train_images, "train-images-idx3-ubyte.gz: corrupt gzip"),
], ids=lambda value: value.__name__ if callable(value) else "message")
def test_bad_idx_files_are_one_line_data_errors(mnist_dir, tmp_path, t10k, damage, problem):
    damage(mnist_dir, t10k[1])
    with pytest.raises(DataError, match=problem) as error:
        loading.load("mnist", data_dir=str(mnist_dir), tfds_dir=str(tmp_path / "tfds"),
                  fallback="fashion_mnist")  # an explicit --data_dir is never swapped
    assert "\n" not in str(error.value)
    assert not prepared_dirs(tmp_path / "tfds")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="nope: no such directory; expected one holding the four "
                                        "IDX files train-images-idx3-ubyte, "):
        loading.load("mnist", data_dir=str(tmp_path / "nope"), tfds_dir=str(tmp_path))


def test_data_dir_for_a_dataset_without_idx_files(tmp_path):
    with pytest.raises(DataError, match="IDX files are read for mnist and fashion_mnist only, "
                                        "got dataset kmnist"):
        loading.load("kmnist", data_dir=str(tmp_path), tfds_dir=str(tmp_path))


def test_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'no_such_dataset': expected mnist, "):
        loading.load("no_such_dataset", tfds_dir=str(tmp_path))


def test_dataset_that_is_not_image_classification(tmp_path):
    with pytest.raises(DataError, match=r"glue is not an image-classification dataset: expected "
                                        r"features 'image' \(Image\) and 'label' \(ClassLabel\)"):
        loading.load("glue", tfds_dir=str(tmp_path))


def test_offline_download_fails_within_seconds(tmp_path, offline):
    start = time.perf_counter()
    with pytest.raises(DataError, match=(
            "kmnist is not available offline .*TFDS's download needs network: 127.0.0.1:[0-9]+ is "
            "unreachable\\); options: --dataset=fashion_mnist after `apt-get install "
            "dataset-fashion-mnist`, or a machine with internet access")):
        loading.load("kmnist", tfds_dir=str(tmp_path))
    assert time.perf_counter() - start < 15


def test_offline_mnist_without_fallback_names_the_options(tmp_path, offline):
    with pytest.raises(DataError, match="mnist is not available offline \\(no IDX files "
                                        "\\(--data_dir\\), .*options: --data_dir=DIR with the four "
                                        "IDX files, --dataset=fashion_mnist after"):
        loading.load("mnist", tfds_dir=str(tmp_path))


@needs_fashion_mnist
def test_offline_mnist_falls_back_to_debian_fashion_mnist_announced(tmp_path, offline):
    logs = []
    fashion = loading.load("mnist", tfds_dir=str(tmp_path), fallback="fashion_mnist", log=logs.append)
    assert logs[0].startswith(
        "mnist is not available offline (no IDX files (--data_dir), not prepared in ")
    assert logs[0].endswith(
        "falling back to fashion_mnist from /usr/share/datasets/fashion-mnist — pass "
        "--dataset=fashion_mnist to choose it explicitly, or --data_dir=DIR holding mnist's IDX "
        "files")
    assert fashion.name == "fashion_mnist"
    assert fashion.source.startswith("fallback for mnist (offline): IDX files in "
                                     "/usr/share/datasets/fashion-mnist, via TFDS (prepared now)")
    assert fashion.class_names[:3] == ("T-shirt/top", "Trouser", "Pullover")
    assert fashion.class_names[-1] == "Ankle boot"
    assert fashion.train_images.shape == (60000, 28, 28)
    assert fashion.test_images.shape == (10000, 28, 28)
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10


def test_a_tfds_directory_that_cannot_be_made_is_one_data_error_not_a_damaged_copy(mnist_files, tmp_path):
    """/dev/null/tfds (HOME=/dev/null's default, or a file in the way) cannot hold a prepared copy: say that,
    rather than calling the copy damaged and failing again while rebuilding it."""
    logged = []
    with pytest.raises(DataError, match=r"^/dev/null/tfds cannot hold the prepared copy of mnist \(Not a directory\): "
                                        r"pass --tfds_dir=DIR, a writable directory$"):
        loading.load("mnist", str(mnist_files), "/dev/null/tfds", log=logged.append)
    assert not any("damaged" in line for line in logged), logged

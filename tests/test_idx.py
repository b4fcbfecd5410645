"""engine.data.idx: IDX files read back exactly, and every way a file can be broken is one IdxError."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.idx import IdxError, read_idx, write_idx
from engine.errors import DataError
from tests.conftest import MNIST_T10K

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">HBB{len(dims)}I", 0, code, len(dims), *dims) + payload


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - 7).astype(dtype)
    path = tmp_path / f"array-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_big_endian_on_disk(tmp_path):
    write_idx(tmp_path / "x", np.array([1, 258], np.int16))
    assert (tmp_path / "x").read_bytes() == b"\x00\x00\x0b\x01\x00\x00\x00\x02\x00\x01\x01\x02"


def test_write_rejects_dtype_without_idx_code(tmp_path):
    with pytest.raises(ValueError, match="no type code for dtype int64, expected one of uint8"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def test_idx_error_is_a_data_error():
    assert issubclass(IdxError, DataError) and issubclass(DataError, ValueError)


LABELS = idx_bytes(0x08, (10,), bytes(range(10)))


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file, expected an IDX header"),
    (b"\x00\x00", "truncated header: 2 bytes, expected at least 4"),
    (b"\x1f\x8b\x08\x00" + LABELS[4:], "bad magic number 0x1f8b0800: IDX files start with two"),
    (b"\x00\x00\x07\x01" + LABELS[4:], r"unknown IDX type code 0x07, expected one of 0x08 \(uint8\)"),
    (b"\x00\x00\x08\x00", "header declares 0 dimensions, expected at least 1"),
    (b"\x00\x00\x08\x03" + b"\x00" * 8, "truncated header: 3 dimensions need 16 bytes, file has"),
    (LABELS[:-1], r"truncated: header says 10 items of 1 byte \(shape \(10,\)\), file has 9 bytes"),
    (LABELS + b"\x00\x00", "2 trailing bytes: header says 10 items of 1 byte .* file has 12"),
    (idx_bytes(0x0B, (3,), b"\x00" * 5), "truncated: header says 3 items of 2 bytes"),
])
def test_corrupt_file_is_one_line_naming_file_and_problem(tmp_path, data, problem):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(IdxError, match=problem) as error:
        read_idx(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def _gz(data):
    """gzip with a fixed header time, so the bytes (and the test ids) are the same in every process."""
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("data, problem", [
    pytest.param(b"this is not gzip", "corrupt gzip .*download it again, or pass the uncompressed file",
                 id="not-gzip"),
    pytest.param(_gz(LABELS)[:-9], "corrupt gzip", id="cut-inside-stream"),
    pytest.param(_gz(LABELS)[:-3], "corrupt gzip", id="cut-inside-trailer"),
    pytest.param(b"", "empty file", id="empty"),
    pytest.param(_gz(LABELS[:-1]), "truncated: header says 10 items", id="truncated-inside"),
    pytest.param(_gz(LABELS + b"\x00"), "1 trailing byte: header says 10 items", id="trailing-inside"),
])
def test_corrupt_gzip_file(tmp_path, data, problem):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(IdxError, match=problem) as error:
        read_idx(path)
    assert str(error.value).startswith(f"{path}: ")


def test_missing_file(tmp_path):
    with pytest.raises(IdxError, match="nope-idx1-ubyte: cannot read: No such file"):
        read_idx(tmp_path / "nope-idx1-ubyte")


IMAGES = idx_bytes(0x0B, (3, 2, 2), bytes(range(24)))


@settings(max_examples=400, deadline=None)
@given(compressed=st.booleans(), offset=st.integers(0, 15), noise=st.binary(max_size=8),
       cut=st.integers(0, len(IMAGES) + 4))
def test_fuzz_header_bytes_and_truncation_raise_only_idx_error(
        tmp_path_factory, compressed, offset, noise, cut):
    data = bytearray(IMAGES)
    data[offset:offset + len(noise)] = noise
    data = bytes(data)
    if compressed:  # cut the compressed stream, not the IDX bytes inside it
        data = _gz(data)
    path = tmp_path_factory.getbasetemp() / ("fuzz-idx3-ubyte" + ".gz" * compressed)
    path.write_bytes(data[:cut])
    try:
        array = read_idx(path)
    except IdxError as error:
        assert "\n" not in str(error)
    else:  # the damage happened to leave a consistent file: it must read back consistently
        assert isinstance(array, np.ndarray) and array.size == np.prod(array.shape)


def test_the_committed_mnist_subset_is_real_mnist():
    """tests/data/mnist: the first 2,500 digits of MNIST's test set, exactly as its README states."""
    for line in (MNIST_T10K / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split()
        assert hashlib.sha256((MNIST_T10K / name).read_bytes()).hexdigest() == expected, name
    images = read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (2500, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (2500,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [219, 287, 276, 254, 275, 221, 225, 257, 242, 244]
    assert images.max() == 255 and images.min() == 0


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    for prefix, count in (("train", 60000), ("t10k", 10000)):
        images = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        assert images.shape == (count, 28, 28) and labels.shape == (count,)
        assert np.bincount(labels).tolist() == [count // 10] * 10

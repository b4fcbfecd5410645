"""IDX files, the format MNIST and Fashion-MNIST ship in: read them strictly, write small ones.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the items in
C order, big-endian:

    magic = 0x00 0x00 <type code> <ndim>     e.g. 00 00 08 03 for uint8 images [N, 28, 28]
    dims  = ndim x uint32                    e.g. 10000, 28, 28
    data  = prod(dims) items                 exactly; a byte more or less is an error

Files usually come gzipped (`*.gz`). Reading is bounded by the header: the payload is read up
to what the header announces (and one byte more, to refuse trailing data), so a gzip that
expands far beyond its header never fills memory. `read_idx` turns every way such a file can be wrong
(corrupt gzip, a foreign file, a cut-off download) into one `IdxError` line naming the file
and the problem, so that a bad `--data_dir` never surfaces as a zlib or struct traceback.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.run import writes

# IDX type code -> big-endian NumPy dtype, as specified on yann.lecun.com/exdb/mnist.
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}


_MAX_GZIP_RATIO = 1100  # deflate's largest expansion is 1032:1 (RFC 1951: 258 bytes per 2-bit code, roughly)


_TRAILING_COUNTED = 64 << 20  # trailing bytes are counted (for the message) up to this many, 1 MiB at a time


class IdxError(DataError):
    """An IDX file is unreadable, corrupt, or not an IDX file at all."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, gzipped if its name ends in `.gz`, and checks it is complete.

    Args:
      path: the file, e.g. `.../t10k-labels-idx1-ubyte.gz`.

    Returns:
      A native-byte-order array with the header's dtype and shape, e.g. uint8 [10000].

    Raises:
      IdxError: the file is missing, not valid gzip, or its header and payload disagree.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            return _read_stream(path, file, size, path.suffix == ".gz")
    except (OSError, EOFError, zlib.error) as e:
        if path.suffix == ".gz" and not isinstance(e, FileNotFoundError):
            raise IdxError(
                f"{path}: corrupt gzip ({e}); download it again, or pass the uncompressed file"
            ) from None
        raise IdxError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None


def _read_stream(path: Path, file, size: int, gzipped: bool) -> np.ndarray:
    """Reads the header, then exactly the payload it announces, plus one byte to detect more.

    Never more: a gzip bomb (a small file that expands without end) is refused after the header,
    or after one byte past the payload, instead of being inflated whole into memory.
    """
    magic = file.read(4)
    if not magic:
        raise IdxError(f"{path}: empty file, expected an IDX header")
    if len(magic) < 4:
        raise IdxError(f"{path}: truncated header: {len(magic)} bytes, expected at least 4")
    zero, code, ndim = struct.unpack(">HBB", magic)
    if zero != 0:
        raise IdxError(
            f"{path}: bad magic number 0x{magic.hex()}: IDX files start with two zero bytes"
            " (is this an IDX file?)"
        )
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in _DTYPES.items())
        raise IdxError(f"{path}: unknown IDX type code 0x{code:02x}, expected one of {known}")
    if ndim == 0:
        raise IdxError(f"{path}: header declares 0 dimensions, expected at least 1")
    header_size = 4 + 4 * ndim
    raw_dims = file.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IdxError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} bytes,"
            f" file has {4 + len(raw_dims)}"
        )
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = _DTYPES[code]
    items = math.prod(dims)
    expected = items * dtype.itemsize
    # deflate expands at most ~1032:1, so a payload beyond that cannot be in the file
    if not gzipped and expected > size - header_size:
        raise IdxError(
            f"{path}: truncated: header says {items} items of {dtype.itemsize} byte"
            f"{'s' * (dtype.itemsize > 1)} (shape {dims}), file has {size - header_size} bytes of payload"
        )
    if gzipped and expected > size * _MAX_GZIP_RATIO:
        raise IdxError(
            f"{path}: truncated: header says {items} items of {dtype.itemsize} byte"
            f"{'s' * (dtype.itemsize > 1)} (shape {dims}), more than a {size}-byte gzip can hold"
        )
    data = file.read(expected + 1)
    actual = len(data)
    if actual > expected:
        actual += _count_rest(file)
    if actual != expected:
        extra = actual - expected
        problem = "truncated" if extra < 0 else f"{extra} trailing byte{'s' * (extra > 1)}"
        more = "at least " if actual >= expected + _TRAILING_COUNTED else ""
        raise IdxError(
            f"{path}: {problem}: header says {items} items of {dtype.itemsize} byte"
            f"{'s' * (dtype.itemsize > 1)} (shape {dims}), file has {more}{actual} bytes of payload"
        )
    array = np.frombuffer(data, dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def _count_rest(file) -> int:
    """Counts what is left in `file`, a chunk at a time and at most `_TRAILING_COUNTED` bytes."""
    count = 0
    while count < _TRAILING_COUNTED:
        chunk = file.read(1 << 20)
        if not chunk:
            break
        count += len(chunk)
    return count


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes `array` as an IDX file, gzipped if `path` ends in `.gz`.

    Used to make small or deliberately broken datasets in tests; gzip's timestamp is fixed at
    0 so that the same array always gives the same bytes (and the same data fingerprint).

    Args:
      path: where to write.
      array: at least 1-D, at most 255-D, of a dtype IDX has a code for (uint8, int8, int16,
        int32, float32, float64).

    Raises:
      ValueError: `array`'s dtype or rank has no IDX encoding.
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        known = ", ".join(d.name for d in _CODES)
        raise ValueError(f"IDX has no type code for dtype {array.dtype}, expected one of {known}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got an array of shape {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    data = header + array.astype(_DTYPES[code]).tobytes()
    writes.write_bytes(str(path), gzip.compress(data, mtime=0) if Path(path).suffix == ".gz" else data)

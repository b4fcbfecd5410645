"""Fuzzing whole IDX headers: any type code, any rank, any dimensions, any payload length.

tests/test_idx.py fuzzes bytes of a real header and cuts files short; this draws the header's
fields themselves, including ranks up to 255 and dimensions up to 2^32 - 1 whose product no
memory could hold: `read_idx` must answer every one with an `IdxError` line (or a consistent
array), never a MemoryError, an OverflowError or a NumPy traceback.
"""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.idx import IdxError, read_idx


@settings(max_examples=300, deadline=None)
@given(code=st.integers(0, 255), dims=st.lists(st.integers(0, 2**32 - 1), max_size=255),
       declared_rank=st.integers(0, 255), payload=st.binary(max_size=64), zero=st.sampled_from([0, 0, 1, 0x1F8B]))
def test_any_header_is_an_idx_error_or_a_consistent_array(tmp_path_factory, code, dims, declared_rank, payload,
                                                          zero):
    header = struct.pack(">HBB", zero, code, declared_rank) + struct.pack(f">{len(dims)}I", *dims)
    path = tmp_path_factory.getbasetemp() / "fuzz-header-idx"
    path.write_bytes(header + payload)
    try:
        array = read_idx(path)
    except IdxError as error:
        assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
    else:
        assert array.ndim == declared_rank and array.size * array.itemsize <= len(header + payload)
        assert array.shape == tuple(np.frombuffer(header[4:4 + 4 * declared_rank], ">u4"))

"""Cuts this folder's MNIST subset from the original test set, and checks both against their checksums.

    python tests/data/mnist/make_subset.py DIR   # DIR holds the original t10k-*-ubyte.gz files

Takes the first `COUNT` images and labels of MNIST's t10k set, unchanged, and writes them with the
project's own IDX writer (`engine.data.idx.write_idx`: gzip level 9, timestamp 0), so the same input
gives the same bytes and the committed files' SHA256SUMS can be checked. The source files are
checked first: the subset is only as real as the files it is cut from.
"""

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for `engine`

from engine.data.idx import read_idx, write_idx  # noqa: E402

COUNT = 2500
# MNIST's t10k files as recompressed in the copy the subset was cut from (README.md here).
SOURCE_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(source: Path) -> None:
    for name, expected in SOURCE_SHA256.items():
        if sha256(source / name) != expected:
            sys.exit(f"{source / name}: sha256 {sha256(source / name)}, expected {expected}")
    for name in SOURCE_SHA256:
        write_idx(HERE / name, read_idx(source / name)[:COUNT])
    for line in (HERE / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split()
        if sha256(HERE / name) != expected:
            sys.exit(f"{HERE / name}: sha256 {sha256(HERE / name)}, expected {expected} (SHA256SUMS)")
    print(f"wrote the first {COUNT} images and labels into {HERE}; SHA256SUMS match")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

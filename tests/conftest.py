"""Shared test fixtures: where the real data lives, and a quiet TensorFlow."""

import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The first 2,500 digits of MNIST's test set, committed (tests/data/mnist/README.md says how and why).
MNIST_T10K = REPO / "tests" / "data" / "mnist"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def pytest_collection_modifyitems(items):
    """Refuses a test id holding an object's memory address ("<... object at 0x7f...>"): it differs
    in every process, and README's test command collects in two (pytest-xdist), which refuse to run
    unless their ids agree. Caught here in any run, serial too; tests/test_collection.py compares two
    processes' collections for the ids this cannot see (a timestamp, a hash order)."""
    addressed = [item.nodeid for item in items if re.search(r" at 0x[0-9a-f]+", item.nodeid)]
    if addressed:
        raise pytest.UsageError(f"{len(addressed)} test ids hold a memory address, which differs per process "
                                f"(give the parameters ids=): {addressed[:3]}")


@pytest.fixture(autouse=True)
def _op_determinism_stays_in_its_test():
    """Op determinism is process-wide and has no public switch back; `job.run` and the reliability
    tests turn it on. Turned off after each test, so a later test sees TensorFlow's default kernels
    (the fused cross-entropy kernel's summation order differs under determinism: test_losses)."""
    yield
    from tensorflow.python.framework import config  # the only way back; tests only

    if config.is_op_determinism_enabled():
        config.disable_op_determinism()


def _require(path: Path, how: str) -> Path:
    """Returns `path`; where it is missing, skips with the reason — except in CI, where .ci/run
    installs the data, so a missing data set is a broken setup and must fail, not skip."""
    if path.exists():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is missing in CI: {how}")
    pytest.skip(reason=f"{path} is missing: {how}")


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    return _require(FASHION_MNIST / "train-images-idx3-ubyte.gz", "apt-get install -y dataset-fashion-mnist").parent


@pytest.fixture(scope="session")
def mnist_t10k_dir() -> Path:
    """Real MNIST digits, in the repository: never a skip (a missing file there is a broken checkout)."""
    return MNIST_T10K


def mnist_subset(mnist_t10k_dir: Path, folder: Path, train: int, test: int) -> Path:
    """Writes real MNIST digits as a whole small data set in `folder`: the first `train` t10k images
    as the train split and the next `test` as the test split, as IDX files; returns `folder`."""
    assert train + test <= 2500, "tests/data/mnist holds 2,500 digits"
    from engine.data import idx

    images = idx.read_idx(mnist_t10k_dir / "t10k-images-idx3-ubyte.gz")
    labels = idx.read_idx(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz")
    for split, part in (("train", slice(0, train)), ("t10k", slice(train, train + test))):
        idx.write_idx(folder / f"{split}-images-idx3-ubyte.gz", images[part])
        idx.write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels[part])
    return folder


@pytest.fixture(scope="session")
def fashion_mnist(fashion_mnist_dir, tmp_path_factory):
    """Full Fashion-MNIST through the real route: Debian's IDX files, prepared by TFDS (once a session)."""
    from engine.data import loading

    return loading.load("fashion_mnist", data_dir=str(fashion_mnist_dir),
                     tfds_dir=str(tmp_path_factory.mktemp("tfds")), log=lambda line: None)

"""Benchmark fixtures: a quiet TensorFlow, and the real data loaded once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fashion():
    """Full Fashion-MNIST (Debian's IDX files, prepared once by TFDS): 60k train, 10k test."""
    from bench import workloads

    return workloads.load_data()

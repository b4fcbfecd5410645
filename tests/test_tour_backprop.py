"""The course's backward-pass section: the chain rule run by hand on one batch equals the tape, and the
numerical check it shows proves both (tape and manual) to the project's bound."""

import numpy as np
import pytest

from engine import tour


@pytest.fixture(scope="module")
def section(fashion_mnist_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tour")
    lines = []
    namespace = tour.run("backprop", lines.append, output_dir=str(folder))
    return namespace, "\n".join(lines), folder


def test_the_gradients_by_hand_are_the_tapes_to_float32_rounding(section):
    namespace, text, _ = section
    for hand, tape in zip(namespace["by_hand"], namespace["by_tape"]):
        np.testing.assert_allclose(hand.numpy(), tape.numpy(), atol=1e-6)
    assert namespace["d_images"].shape == (32, 28, 28)
    assert "/kernel:0" in text and "|by hand - by tape|" in text


def test_the_check_it_prints_passes_for_both_ways_and_the_figure_is_drawn(section):
    namespace, text, folder = section
    for way in ("tape", "manual"):
        assert max(c.max_relative_error for c in namespace["checks"][way]) <= 1e-7
    assert "worst relative error: tape " in text
    assert (folder / "gradient_check.png").read_bytes().startswith(b"\x89PNG")

"""The course's optimizers section: the rules it prints are the engine's code, the two-step
example shows what the text says, and the three trainings it draws come out as it says."""

import numpy as np
import pytest

from engine import tour


@pytest.fixture(scope="module")
def section(fashion_mnist_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tour")
    lines = []
    namespace = tour.run("optimizers", lines.append, output_dir=str(folder))
    return namespace, "\n".join(lines), folder


def test_it_prints_the_engines_own_update_rules(section):
    _, text, _ = section
    assert "def update_rule(self, g: tf.Tensor, w: tf.Tensor" in text
    assert 'v = slots["velocities"] * m - g * lr' in text  # SGD's line
    assert "alpha = lr * tf.sqrt(1 - tf.pow(beta_2, t)) / (1 - tf.pow(beta_1, t))" in text  # Adam's


def test_the_two_steps_are_what_the_text_says(section):
    namespace, text, _ = section
    assert "SGD       steps of the two weights: [-1.e+00 -1.e-06] then [-1.e+00 -1.e-06]" in text
    momentum_line = next(line for line in text.splitlines() if line.startswith("momentum  steps"))
    assert "[-1.e+00 -1.e-06] then [-1.9e+00 -1.9e-06]" in momentum_line
    adam_line = next(line for line in text.splitlines() if line.startswith("Adam      steps"))
    first, second = (np.array(part.strip(" []").split(), float) for part in adam_line.split(":")[1].split("then"))
    np.testing.assert_allclose(first, [-0.001, -0.001], rtol=5e-3)  # epsilon shortens the small one a little
    np.testing.assert_allclose(second, [-0.001, -0.001], rtol=5e-3)


def test_momentum_and_adam_are_ahead_of_plain_sgd_after_every_epoch_and_the_figure_is_drawn(section):
    namespace, text, folder = section
    histories = namespace["histories"]
    assert list(histories) == ["SGD 0.01", "momentum 0.9, 0.01", "Adam 0.001"]
    for epoch in range(3):
        plain = histories["SGD 0.01"][epoch]
        for label in ("momentum 0.9, 0.01", "Adam 0.001"):
            assert histories[label][epoch]["val_loss"] < plain["val_loss"], (label, epoch)
            assert histories[label][epoch]["loss"] < plain["loss"], (label, epoch)
    assert all(len(history) == 3 for history in histories.values())
    assert "Adam 0.001          epoch 3: loss " in text
    assert (folder / "optimizers.png").read_bytes().startswith(b"\x89PNG")

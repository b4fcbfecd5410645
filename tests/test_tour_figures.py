"""The figures the tour adds to engine/run/plots.py: runs compared on one chart, and one prediction
beside its image. Each is written as a PNG of the stated size that draws something."""

import matplotlib.image
import numpy as np
import pytest

from engine.run import plots


def history(losses, validation=True):
    return [{"epoch": epoch, "loss": loss, "accuracy": 1 - loss,
             **({"val_loss": loss + 0.1, "val_accuracy": 0.9 - loss} if validation else {})}
            for epoch, loss in enumerate(losses, 1)]


def drawn(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.std() > 0.01  # not a blank canvas
    return pixels.shape[:2]


def test_plot_histories_draws_two_panels_for_any_number_of_runs(tmp_path):
    runs = {"batch 32": history([0.9, 0.6, 0.5]), "batch 512": history([1.8, 1.5, 1.3]),
            "no validation": history([1.0, 0.8], validation=False)}
    plots.plot_histories(runs, str(tmp_path / "runs.png"), title="compared")
    assert drawn(tmp_path / "runs.png") == (400, 1100)  # 11 x 4 inches at 100 dpi, as plot_history


def test_plot_prediction_draws_the_image_beside_one_bar_per_class(tmp_path):
    image = np.linspace(0.0, 1.0, 28 * 28, dtype=np.float32).reshape(28, 28)
    probabilities = np.full(10, 0.05)
    probabilities[9] = 0.55
    plots.plot_prediction(image, probabilities, [f"class {n}" for n in range(10)], str(tmp_path / "one.png"), "t")
    assert drawn(tmp_path / "one.png") == (350, 900)


def test_plot_prediction_needs_one_probability_per_class_name(tmp_path):
    with pytest.raises(ValueError, match=r"^plot_prediction got 3 probabilities for 2 class names: expected one "
                                         r"probability per class$"):
        plots.plot_prediction(np.zeros((28, 28)), np.full(3, 1 / 3), ["a", "b"], str(tmp_path / "bad.png"))


def test_plot_gradient_check_draws_one_bar_group_per_tensor_on_a_log_scale(tmp_path):
    errors = {"tape": [1e-9, 3e-10, 0.0], "manual": [2e-9, 1e-10, 5e-11]}
    plots.plot_gradient_check(errors, ["dense/kernel", "dense/bias", "dense_1/kernel"], str(tmp_path / "check.png"),
                              title="t")
    assert drawn(tmp_path / "check.png") == (350, 800)

"""The figures a run writes: whole-epoch ticks, both sides of a parity run visible, nothing cut off."""

import matplotlib.text

from engine.experiments.search_report import ranking_figure
from engine.run import plots


def history(epochs: int) -> list:
    return [{"epoch": epoch, "loss": 1.0 / epoch, "accuracy": 1 - 0.5 / epoch, "val_loss": 1.1 / epoch,
             "val_accuracy": 1 - 0.6 / epoch} for epoch in range(1, epochs + 1)]


def parity_rows(epochs: int) -> list:
    return [{"epoch": epoch, **{f"{side}_{split}{metric}": value for side in ("engine", "keras")
                                for split in ("", "test_") for metric, value in (("loss", 0.5), ("accuracy", 0.8))}}
            for epoch in range(1, epochs + 1)]


def visible_epoch_ticks(figure) -> list:
    figure.canvas.draw()
    ticks = []
    for axis in figure.axes:
        low, high = axis.get_xlim()
        ticks.append([tick for tick in axis.get_xticks() if low <= tick <= high])
    return ticks


def test_a_short_history_has_ticks_on_its_whole_epochs_only():
    for epochs in (1, 2):
        for panel in visible_epoch_ticks(plots.history_figure(history(epochs))):
            assert panel == list(range(1, epochs + 1)), panel  # not 0.96, 0.98, ... nor 1.2, 1.4, ...


def test_a_one_epoch_parity_figure_marks_both_sides_and_a_long_one_ticks_whole_epochs():
    figure = plots.parity_figure(parity_rows(1))
    for axis in figure.axes:
        lines = [line for line in axis.get_lines() if not line.get_label().startswith("_")]
        assert {line.get_label().split()[0] for line in lines} == {"engine", "tf.keras"}
        for line in lines:  # one point per curve: without a marker, a side is invisible
            assert line.get_marker() not in (None, "", "None", " "), line.get_label()
    assert visible_epoch_ticks(figure) == [[1], [1]]
    for panel in visible_epoch_ticks(plots.parity_figure(parity_rows(7))):
        assert all(tick == int(tick) for tick in panel), panel


def test_the_search_ranking_figure_keeps_its_title_and_labels_inside_the_picture():
    ranked = [{"params": {"hidden": (256, 128), "batch_size": 128, "epochs": 5, "learning_rate": 0.1},
               "accuracy": 0.85 - 0.01 * rank, "accuracy_std": 0.004, "loss": 0.4, "seconds": 12.0}
              for rank in range(4)]
    title = ("4 trials, ranked by mean validation accuracy over 3 folds (fashion_mnist, 6,000 training "
             "images)")
    figure = ranking_figure(ranked, title)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    picture = figure.bbox
    texts = [text for text in figure.findobj(matplotlib.text.Text) if text.get_visible() and text.get_text()]
    assert any("fashion_mnist" in text.get_text() for text in texts)
    for text in texts:
        box = text.get_window_extent(renderer)
        assert picture.x0 <= box.x0 and box.x1 <= picture.x1 and picture.y0 <= box.y0 and box.y1 <= picture.y1, \
            f"{text.get_text()!r} at {box} runs off the {picture} picture"

"""What the tour's sections share: the data, its size, where files go, and how a figure is shown.

A section's code runs in the terminal (`python -m engine.tour`) and in a notebook's kernel
alike; `show` is the one place that differs: in a notebook the figure appears under its cell,
in the terminal its path is printed. Both print the path, so the two print the same text.
"""

import functools
import os
import sys
from typing import Optional

from engine.run import directories

OUTPUT_DIR = "runs/tour"  # set by the first cell of every rendering (see engine.tour.setup_source)
TRAIN_SUBSET = 6000  # training images the sections learn from: the whole course runs in about 2 minutes
SEED = 0


def path(name: str) -> str:
    """`OUTPUT_DIR/name`, the directory created if needed."""
    directories.make_dirs(OUTPUT_DIR, "--output_dir")
    return os.path.join(OUTPUT_DIR, name)


def show(figure: str) -> None:
    """Prints the figure's path; in a Jupyter kernel also displays the PNG under the cell."""
    print(f"(figure: {figure})")
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        from IPython import display

        display.display(display.Image(filename=figure))


@functools.lru_cache(maxsize=None)
def fashion_mnist():
    """Fashion-MNIST as NumPy arrays (engine.data.loading), read once per process."""
    from engine.data import loading

    return loading.load("fashion_mnist", log=print)


def training_set(size: Optional[int] = None):
    """The first `size` (default TRAIN_SUBSET) training images and their labels: float32 [size, 28, 28], int32 [size]."""
    data, size = fashion_mnist(), size or TRAIN_SUBSET
    return data.train_images[:size], data.train_labels[:size]

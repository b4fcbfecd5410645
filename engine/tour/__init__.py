"""A guided course through the engine, each step run and printed: `python -m engine.tour`.

Sections, in order (choose some with `--sections=tensors,graph`):

- tensors:  what a tensor is: rank, shape, dtype, from a scalar to a batch of images.
- eager:    TensorFlow 2's default: every op runs as its line runs and returns a value.
- graph:    the same computation as a `tf.function` graph, and TensorFlow 1's Graph + Session.
- models:   one network four ways: the engine's Sequential and functional Model, Keras's two.
- loop:     one epoch of training as a bare `for` loop: GradientTape, loss, SGD, no Trainer.
- backprop: the backward pass by hand: the chain rule layer by layer, beside the tape's, and
            proved by a numerical gradient check.
- optimizers: SGD, momentum and Adam written out side by side, their code, and the reference
            model's loss curves under each.
- fit:      the same with `Trainer.fit`, several epochs, the loss/accuracy plot, and evaluation.
- sizes:    what changes with the batch size and the width of the layers, measured.
- early_stopping: stop when the validation loss stops improving; keep the best weights.
- search:   a small grid search scored by k-fold cross-validation, and its ranking chart.
- export:   the trained model as TensorFlow Lite, and one prediction beside its image.

One source, two renderings. Each section is a file in `sections/` written in Jupytext's
"percent" format: `# %% [markdown]` cells of explanation and `# %%` cells of code. The terminal
tour (`run`) prints each explanation, each code cell, and what it printed; the notebook
(`engine.tour.notebook`, `--notebook PATH`) turns the very same cells into a Jupyter notebook
and executes it. A section is written once, so the two cannot drift apart.

This package imports no TensorFlow itself: the command line checks its flags first.
"""

import contextlib
import io
import linecache
import re
import textwrap
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

SECTIONS = ("tensors", "eager", "graph", "models", "loop", "backprop", "optimizers", "fit", "sizes", "early_stopping",
            "search", "export")
SECTIONS_DIR = Path(__file__).parent / "sections"
Cell = Tuple[str, str]  # ("markdown" or "code", source)


def cells(section: str) -> List[Cell]:
    """The cells of one section, in order: ("markdown", text) or ("code", source).

    Raises:
      ValueError: for a name not in SECTIONS.
    """
    if section not in SECTIONS:
        raise ValueError(f"unknown tour section {section!r}: expected one of {', '.join(SECTIONS)}")
    text = (SECTIONS_DIR / f"{section}.py").read_text()
    found = []
    for block in re.split(r"^# %%", text, flags=re.MULTILINE)[1:]:  # what precedes the first marker is no cell
        header, _, body = block.partition("\n")
        if header.strip() == "[markdown]":  # each line "# text", or "#" alone for a blank line
            found.append(("markdown", "\n".join(line[2:] for line in body.strip().splitlines())))
        else:
            found.append(("code", body.strip()))
    return found


def setup_source(output_dir: str) -> str:
    """The code both renderings run before any section: where figures and exports are written."""
    return ("from engine.tour import course\n\n"
            f"course.OUTPUT_DIR = {output_dir!r}  # figures and the exported model go here")


def run(section: str, print_fn: Optional[Callable[[str], None]] = None, output_dir: str = "runs/tour") -> Dict:
    """Runs one section in the terminal: its explanation, its code and the code's output.

    Args:
      section: one of SECTIONS.
      print_fn: receives the printed text line by line (tests read it); None prints to stdout as
        the code runs.
      output_dir: where the section writes its figures and files.

    Returns:
      The namespace the section's code ran in: its variables, for tests to check.
    """
    say = print_fn or print
    section_cells = cells(section)
    namespace: Dict = {"__name__": f"engine.tour.sections.{section}"}
    exec(setup_source(output_dir), namespace)  # noqa: S102 - the tour's own source
    say(f"\n=== {section} ===")
    for kind, source in section_cells:
        if kind == "markdown":
            say("\n" + source)
            continue
        say("\n" + textwrap.indent(source, "    ") + "\n")
        filename = f"<tour {section} cell {len(linecache.cache)}>"
        # Registered as a notebook kernel does, so tracebacks show the code and autograph can read
        # a traced function's source (else it warns that it cannot).
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        code = compile(source, filename, "exec")
        if print_fn is None:
            exec(code, namespace)  # noqa: S102
            continue
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                exec(code, namespace)  # noqa: S102
        finally:
            for line in output.getvalue().rstrip("\n").splitlines():
                print_fn(line)
    return namespace

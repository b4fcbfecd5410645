"""The table `summary()` prints for `Sequential` and `Model`, laid out as Keras lays out its own."""

from typing import Callable, Sequence


def print_summary(name: str, rows: Sequence[Sequence[str]], total_params: int,
                  print_fn: Callable[[str], None] = print) -> None:
    """Prints `rows` (the first is the header) as left-aligned columns under the model's name.

    Args:
      name: the model's name, shown as `Model: "name"`.
      rows: one tuple of cells per row, header first; every row has as many cells.
      total_params: shown on the last line.
      print_fn: where each line goes.
    """
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(len(rows[0]))]
    rule = "-" * sum(widths)
    print_fn(f'Model: "{name}"')
    print_fn(rule)
    for i, row in enumerate(rows):
        print_fn("".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        print_fn("=" * len(rule) if i == 0 else rule if i == len(rows) - 1 else "")
    print_fn(f"Total params: {total_params:,}")

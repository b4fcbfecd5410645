"""Command-line parsing for the engine's small programs (`python -m engine.tour`, `engine.tour.graph_picture`).

Each program keeps its flags in its own `absl.flags.FlagValues`, not absl's global FLAGS: then
`train.py` can import a program's functions without a clash of flag names, and tests call its
`main(argv)` in-process. A problem the user can fix is one `PROGRAM: error: ...` line, exit 2.
"""

import sys
from typing import List, Optional, Sequence

from absl import flags


def parse(flag_values: flags.FlagValues, argv: Sequence[str], program: str) -> Optional[List[str]]:
    """Parses `argv` (argv[0] is the program) into `flag_values`, from the defaults up.

    Returns:
      None when the program should go on; otherwise it has printed help (exit 0) or an error
      line (exit 2), and the list holds the exit status.
    """
    flag_values.unparse_flags()  # a second main() call in one process starts from the defaults
    try:
        leftover = flag_values(list(argv))
    except flags.Error as error:
        return [error_line(program, str(error))]
    if flag_values["help"].value:
        print(flag_values.get_help())
        return [0]
    if len(leftover) > 1:
        return [error_line(program, f"unexpected arguments {leftover[1:]}: every option is a --flag")]
    return None


def error_line(program: str, message: str) -> int:
    """Prints `PROGRAM: error: MESSAGE` to stderr; returns the exit status 2."""
    print(f"{program}: error: {message}", file=sys.stderr)
    return 2


def new_flag_values() -> flags.FlagValues:
    """A fresh set of flags holding only --help."""
    flag_values = flags.FlagValues()
    flags.DEFINE_boolean("help", False, "Show the flags and exit.", flag_values=flag_values)
    return flag_values

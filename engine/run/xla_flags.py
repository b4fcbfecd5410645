"""Which library XLA's CPU compiler hands a step's dots to, told through `XLA_FLAGS`.

XLA reads `XLA_FLAGS` once per process, at its first compilation, and keeps what it read: a flag
set later changes nothing. So `dots_on` sets it before the run compiles its step (engine/app/job.py's
`start`, before anything is traced), and puts the variable back as it was when the run ends, so a
process that runs several jobs (a test session) hands its later children the environment it had.
In such a process a later job's dots go where the first compilation's flags said, whatever that
job asked for: `train.py` runs one job per process, so its Device line is what XLA does.
Child processes started during the run (a search's workers) inherit the flag, as they inherit the
rest of the run's environment.

The choice itself, and the measurements behind it, are engine/execution.py's `dot_library_for`.
"""

import contextlib
import os
from typing import Iterator, MutableMapping, Optional

OPTION = "--xla_cpu_experimental_ynn_fusion_type"  # the dots (and other ops) XLA hands to YNNPACK
FLAGS = {
    "xla": "",  # XLA's own dot emitter: TensorFlow 2.21's default
    "ynnpack": f"{OPTION}=dot",  # the dots that contract the left operand's last dimension: JAX 0.10's default
}

USERS = "as XLA_FLAGS says"  # `dots_on`'s answer where the user's own XLA_FLAGS chose


def with_dot_library(xla_flags: str, library: str) -> str:
    """`xla_flags` with `library`'s flag after them: a user's own flags stay, and a user who already
    names OPTION keeps their choice (XLA would take the last one given, so ours is not added)."""
    if library not in FLAGS:
        raise ValueError(f"Unknown dot library {library!r}: expected one of {', '.join(FLAGS)}")
    if not FLAGS[library] or OPTION in xla_flags:
        return xla_flags
    return " ".join(filter(None, [xla_flags, FLAGS[library]]))


@contextlib.contextmanager
def dots_on(library: str, environ: Optional[MutableMapping[str, str]] = None) -> Iterator[str]:
    """Within the block, `XLA_FLAGS` asks for `library`'s dots (`with_dot_library`); after it, the
    variable is as it was (absent if it was). Yields the library the block's dots go to: `library`,
    or USERS where the user's own XLA_FLAGS name OPTION (theirs holds)."""
    environ = os.environ if environ is None else environ
    before = environ.get("XLA_FLAGS")
    flags = with_dot_library(before or "", library)
    if flags:
        environ["XLA_FLAGS"] = flags
    try:
        yield USERS if OPTION in (before or "") else library
    finally:
        if before is None:
            environ.pop("XLA_FLAGS", None)
        else:
            environ["XLA_FLAGS"] = before

"""Command-line parsing shared by every program: train.py, `python -m engine.experiments.search`, ...

Each program keeps its flags in its own `absl.flags.FlagValues`, not absl's global FLAGS: then
`train.py` can import a program's functions without a clash of flag names, and tests call its
`main(argv)` in-process. Flags that several programs take (`--hidden`, the data set, the
execution mode) are declared here, once, so they parse and read alike everywhere.

Flags are checked by absl as they are parsed (`DEFINE_enum`, bounds, validators), before
TensorFlow is imported, so `--help` and a bad flag cost a fraction of a second. A problem the
user can fix is one `PROGRAM: error: ...` line on stderr and exit status 2 (`--help`: exit 0).
"""

import re
import sys
from typing import List, Optional, Sequence, Tuple

from absl import flags

from engine.run.config import MODE_CHOICES, MODES


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
        return [error_line(program, _reason_first(str(error)))]
    if flag_values["help"].value:
        print(f"usage: {program} [--flag=value ...]; its flags, then those it shares with other programs:")
        print(flag_values.get_help())
        return [0]
    if len(leftover) > 1:
        return [error_line(program, f"unexpected arguments {leftover[1:]}: every option is a --flag")]
    return None


def _reason_first(message: str) -> str:
    """absl's "flag --NAME=VALUE: REASON" with a long VALUE shortened, so the reason stays on the
    capped error line: `--hidden` with 3,000 sizes must still say what is wrong with them."""
    match = re.fullmatch(r"flag --(\w+)=(.*?): (.*)", message, flags=re.DOTALL)
    if match is None:
        return message
    name, value, reason = match.groups()
    return f"flag --{name}={shortened(value)}: {reason}"


def shortened(text: str, limit: int = 60) -> str:
    """`text`, or its first `limit` characters and how many there were."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def error_line(program: str, message: str) -> int:
    """Prints `PROGRAM: error: MESSAGE` to stderr as one capped line (`faults.one_line`); returns the exit status 2."""
    from engine.run.faults import one_line

    print(f"{program}: error: {one_line(message)}", file=sys.stderr)
    return 2


def new_flag_values() -> flags.FlagValues:
    """A fresh set of flags holding only --help."""
    flag_values = flags.FlagValues()
    flags.DEFINE_boolean("help", False, "Show the flags and exit.", flag_values=flag_values)
    return flag_values


class HiddenParser(flags.ArgumentParser):
    """`--hidden=256,128` -> (256, 128): hidden layer sizes, positive integers, comma-separated."""

    syntactic_help = "comma-separated positive layer sizes, e.g. 256,128"

    def parse(self, argument) -> Tuple[int, ...]:
        text = argument if isinstance(argument, str) else ",".join(map(str, argument))
        try:
            sizes = tuple(int(size) for size in text.split(","))
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise ValueError("expected a comma-separated list of positive integers like 256,128")
        return sizes

    def flag_type(self) -> str:
        return "hidden layer sizes"


class _HiddenSerializer(flags.ArgumentSerializer):
    def serialize(self, value) -> str:
        return ",".join(map(str, value))


def define_hidden(flag_values: flags.FlagValues, default: str, help_text: str, multi: bool = False) -> None:
    """--hidden=256,128; with `multi`, repeated for several models: --hidden=64 --hidden=128,64."""
    if multi:
        flags.DEFINE_multi(HiddenParser(), _HiddenSerializer(), "hidden", default.split(), help_text,
                           flag_values=flag_values)
    else:
        flags.DEFINE(HiddenParser(), "hidden", default, help_text, flag_values=flag_values,
                     serializer=_HiddenSerializer())


def define_data(flag_values: flags.FlagValues, dataset: str, dataset_note: str = "") -> None:
    """--dataset, --data_dir, --tfds_dir: where the images come from (engine/data/loading.py)."""
    flags.DEFINE_string("dataset", dataset, "mnist, fashion_mnist, or another TFDS image-classification dataset."
                        + dataset_note, flag_values=flag_values)
    flags.DEFINE_string("data_dir", None, "Directory holding the four IDX files (train-images-idx3-ubyte.gz, ...).",
                        flag_values=flag_values)
    flags.DEFINE_string("tfds_dir", None, "TensorFlow Datasets data directory (default ~/tensorflow_datasets).",
                        flag_values=flag_values)
    flags.register_validator("dataset", _check_dataset_name, flag_values=flag_values)


def _check_dataset_name(name: str) -> bool:
    """A TFDS name, NAME[/CONFIG][:VERSION], in any case: refused here, before TensorFlow loads, when it
    cannot be one (TFDS answers a malformed name with a 40-line traceback)."""
    base = name.split("/")[0].split(":")[0]
    if not name.strip():
        raise flags.ValidationError("expected a dataset name: mnist, fashion_mnist, or another TFDS "
                                    "image-classification dataset")
    if re.fullmatch(r"[A-Za-z0-9_-]+", base) and "-" in base:
        raise flags.ValidationError(f"dataset names use underscores, not dashes: did you mean "
                                    f"--dataset={name.replace('-', '_').lower()}?")
    if not re.fullmatch(r"[A-Za-z0-9_]+(/[\w.=,]+)?(:[0-9*]+(\.[0-9*]+)*)?", name):
        raise flags.ValidationError("expected a TFDS dataset name like mnist, fashion_mnist, cifar10, "
                                    "NAME/CONFIG or NAME:VERSION")
    return True


def define_mode(flag_values: flags.FlagValues, default: str) -> None:
    """--mode: eager, graph or xla (engine/execution.py); train.py's default, auto, picks by batch size."""
    if default == "auto":
        flags.DEFINE_enum("mode", default, MODE_CHOICES, "Execution mode: auto (xla; graph for "
                          "--precision=mixed_bfloat16 from batch size 256, and for float32 from batch size 4096 on "
                          "an AVX-512 CPU: engine/execution.py's mode_for), eager, "
                          "graph (tf.function) or xla (jit_compile=True).", flag_values=flag_values)
        return
    flags.DEFINE_enum("mode", default, MODES, "Execution mode: eager, graph (tf.function) or xla (jit_compile=True).",
                      flag_values=flag_values)

"""Writing result files so that a crash never leaves half of one."""

import json
import os


def write_json_atomically(payload: dict, path: str) -> None:
    """Writes via a temporary file and a rename: readers see the old file or the new, never a part."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        json.dump(payload, file, indent=2)
    os.replace(temporary, path)

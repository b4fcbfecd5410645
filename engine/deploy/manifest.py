"""An export's manifest: the size and sha256 of every one of its files, so a reader trusts all or none.

    manifest.json = {"files": {"labels.txt": {"bytes": 91, "sha256": "1f0c..."},
                               "model.tflite": {...},
                               "saved_model/saved_model.pb": {...},
                               "saved_model/variables/variables.data-00000-of-00001": {...}, ...}}

An export is replaced as a whole (engine/run/swap.py): it is built beside the old
one and swapped in by one rename, so its files are never found beside another export's. A copy
by hand, a partial restore or a disk fault can still mix or damage them, and a SavedModel and a
`.tflite` of two trainings would each be served without complaint (they disagreed on 124 of 160
images when issue 23 mixed them). So `verify` refuses an export whose files are not exactly
those its manifest lists, byte for byte: one missing, changed, added or a link.

An export written before the manifest covered saved_model/ (its entries at the top level, no
"files") is checked for what it lists. Free of TensorFlow, so that `--export_dir` is checked
(`check_export_dir`) before TensorFlow is imported.
"""

import hashlib
import json
import os
from typing import Dict, Mapping, Optional

from engine.errors import ConfigError, DataError
from engine.run import directories, swap, writes

SAVED_MODEL, TFLITE, LABELS, MANIFEST = "saved_model", "model.tflite", "labels.txt", "manifest.json"
ENTRIES = (SAVED_MODEL, TFLITE, LABELS, MANIFEST)  # all an export directory holds


def file_entry(data: bytes) -> dict:
    """A file's manifest entry: its size and sha256."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _digest(path: str) -> dict:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _files(export_dir: str) -> Dict[str, Optional[str]]:
    """Every path of the export, relative to it, but the manifest: None for a regular file, else what it is."""
    found = {}
    for entry in ENTRIES[:-1]:
        top = os.path.join(export_dir, entry)
        if os.path.isdir(top) and not os.path.islink(top):
            for root, folders, names in os.walk(top):
                for name in names + [folder for folder in folders if os.path.islink(os.path.join(root, folder))]:
                    path = os.path.join(root, name)
                    found[os.path.relpath(path, export_dir)] = None if os.path.isfile(path) and not os.path.islink(
                        path) else directories.describe(path)
        elif os.path.lexists(top):
            found[entry] = None if os.path.isfile(top) and not os.path.islink(top) else directories.describe(top)
    return found


def write(export_dir: str) -> None:
    """Writes `export_dir`'s manifest.json, covering every file in it."""
    files = {path: _digest(os.path.join(export_dir, path)) for path in sorted(_files(export_dir))}
    writes.write_json(os.path.join(export_dir, MANIFEST), {"files": files})


def verify(export_dir: str, model: str) -> None:
    """Refuses an export whose files are not exactly its manifest's (see the module docstring).

    Raises:
      DataError: naming the first file missing, changed, not in the manifest, or not a file.
    """
    where = f"--model {model}: the export {export_dir}"
    try:
        with open(os.path.join(export_dir, MANIFEST)) as file:
            saved = json.load(file)
        listed = saved["files"] if "files" in saved else {name: saved[name] for name in (TFLITE, LABELS) if name in saved}
        expected = {str(path): (int(entry["bytes"]), str(entry["sha256"])) for path, entry in listed.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise DataError(f"{where} has an unreadable {MANIFEST} ({type(error).__name__}): export it again") from None
    present = _files(export_dir)
    for path, kind in sorted(present.items()):
        if kind is not None:
            raise DataError(f"{where} is damaged: {path} is {kind}, not a file of the export: export it again")
        if "files" in saved and path not in expected:
            raise DataError(f"{where} is mixed: {path} is not in its {MANIFEST} (a file of another export?): "
                            "export it again")
    for path, (size, sha256) in sorted(expected.items()):
        if path not in present:
            raise DataError(f"{where} is incomplete: {path}, listed in its {MANIFEST}, is missing: export it again")
        found = _digest(os.path.join(export_dir, path))
        if (found["bytes"], found["sha256"]) != (size, sha256):
            raise DataError(f"{where} is mixed or damaged: {path} is {found['bytes']:,} bytes with sha256 "
                            f"{found['sha256'][:12]}, its {MANIFEST} says {size:,} bytes, {sha256[:12]}: the file is "
                            "cut or changed; export it again")


def check_export_dir(path: str, others: Mapping[str, Optional[str]] = {}) -> None:  # noqa: B006 - read only
    """Refuses, before any work, an `--export_dir` an export cannot replace as a whole.

    Args:
      others: the run's other directories by flag (`--output_dir`: ...): none may be the export
        directory or inside it, since replacing the export would delete them.
    """
    swap.check_replaceable(path, ENTRIES, "--export_dir")
    real = os.path.realpath(path)
    for flag, other in others.items():
        if other and (os.path.realpath(other) + os.sep).startswith(real + os.sep):
            raise ConfigError(f"--export_dir {path} holds {flag} {other}: an export replaces its whole directory, "
                              "so give it one of its own")

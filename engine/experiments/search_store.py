"""The search's results file: what makes a search resumable.

Every finished trial is recorded in `results.json` the moment it finishes, by writing a new
file and renaming it over the old one (engine/run/writes.py): a search killed at any
instant leaves either the previous complete file or the new complete one, never half of one.
A rerun loads the file and skips every trial already in it, so only unfinished work is redone.

The file also records the search's setup (data, subset, folds, seed, mode): trials scored on
other folds or data are not comparable, so a rerun with another setup is refused rather than
mixed in. Data means content: the setup holds a fingerprint of the images and labels searched
on, so another subset of the same size is refused too.

The file is strict JSON: a trial whose loss went to NaN or Inf is recorded with `"diverged":
true` (engine/experiments/search_trials.py says when) and `null` in place of each non-finite number (Python's `json` would write a bare `NaN`,
which other JSON readers reject), and it ranks last. A file that is not what this module
writes is refused with one line.
"""

import hashlib
import json
import math
import os
from typing import Dict, List, Optional

import numpy as np

from engine.errors import ConfigError
from engine.run import writes


def trial_key(params: Dict) -> str:
    """A trial's identity, stable across runs: `batch_size=32,epochs=1,hidden=16-8,learning_rate=0.1`."""
    return ",".join(f"{name}={'-'.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"
                    for name, value in sorted(params.items()))


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """16 hex digits of the sha256 of the arrays' bytes: the identity of the data searched on."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, np.int64).tobytes())
    return digest.hexdigest()[:16]


def strict(value):
    """`value` with every NaN or infinite float (in lists and dicts too) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def _refuse_constant(name: str) -> None:
    """`json.load` accepts a bare NaN or Infinity, which this module never writes (it writes null)."""
    raise ValueError(f"a bare {name}, which is not JSON")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _record_problem(record) -> Optional[str]:
    """What makes a trial's record other than `ResultsFile.add` writes it, or None.

    A number is a finite int or float, or null for a diverged trial: a string "0.9" would sort
    as text, and a NaN accuracy compares false with everything, which ranked it first.
    """
    if not isinstance(record, dict) or not {"params", "accuracy", "loss"} <= record.keys():
        return "is not a record with params, accuracy and loss"
    if not isinstance(record["params"], dict) or not record["params"]:
        return f"has params {record['params']!r}, not the trial's settings"
    for name in ("accuracy", "loss", "accuracy_std", "seconds"):
        value = record.get(name)
        if name in record and value is not None and not _is_number(value):
            return f"has {name} {value!r} ({type(value).__name__}), not a number"
    if record.get("accuracy") is None and not record.get("diverged"):
        return "has no accuracy and is not marked diverged"
    if "diverged" in record and not isinstance(record["diverged"], bool):
        return f"has diverged {record['diverged']!r}, not true or false"
    return None


class ResultsFile:
    """The finished trials of one search, on disk.

    Example:
      >>> results = ResultsFile("runs/search/results.json", setup={"folds": 3, ...})
      >>> if not results.finished(trial_key(params)):
      ...     results.add(trial_key(params), {"params": params, "accuracy": 0.84, ...})
    """

    def __init__(self, path: str, setup: Dict):
        self.path, self.setup = path, setup
        self.trials: Dict[str, Dict] = {}
        if os.path.exists(path):
            try:
                with open(path) as file:
                    saved = json.load(file, parse_constant=_refuse_constant)
            except (OSError, ValueError) as error:
                raise ConfigError(f"{path} is not a readable results file ({error}): delete it, or pass "
                                  "another --output_dir") from None
            if not (isinstance(saved, dict) and isinstance(saved.get("trials"), dict)):
                raise ConfigError(f"{path} is not a results file of this search (expected {{\"setup\": ..., "
                                  "\"trials\": {...}} as search writes it): delete it, or pass another --output_dir")
            for key, record in saved["trials"].items():
                problem = _record_problem(record)
                if problem:
                    raise ConfigError(f"{path} is not a results file of this search: trial {key[:80]} {problem}; "
                                      "delete the file (or that trial), or pass another --output_dir")
            if saved.get("setup") != setup:
                raise ConfigError(f"{path} holds trials of another setup ({saved.get('setup')}, now {setup}): "
                                  "pass another --output_dir, or the same data, subset, folds, seed and mode")
            self.trials = saved["trials"]

    def finished(self, key: str) -> bool:
        return key in self.trials

    def add(self, key: str, record: Dict) -> None:
        """Records one finished trial and rewrites the file at once."""
        diverged = bool(record.get("diverged")) or not all(
            isinstance(record.get(name), (int, float)) and math.isfinite(record[name]) for name in ("accuracy", "loss"))
        self.trials[key] = {**strict(record), "diverged": diverged}
        writes.write_json(self.path, {"setup": self.setup, "trials": self.trials})

    def ranked(self) -> List[Dict]:
        """Finished trials, best mean cross-validated accuracy first (ties: lower loss first); diverged ones last."""
        def key(record: Dict):
            if record.get("diverged") or not all(_is_number(record[name]) and math.isfinite(record[name])
                                                 for name in ("accuracy", "loss")):
                return (1, 0.0, 0.0)  # never first: a NaN compares false with everything
            return (0, -record["accuracy"], record["loss"])
        return sorted(self.trials.values(), key=key)

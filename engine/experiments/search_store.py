"""The search's results file: what makes a search resumable.

Every finished trial is recorded in `results.json` the moment it finishes, by writing a new
file and renaming it over the old one (`write_json_atomically`): a search killed at any
instant leaves either the previous complete file or the new complete one, never half of one.
A rerun loads the file and skips every trial already in it, so only unfinished work is redone.

The file also records the search's setup (data, subset, folds, seed, mode): trials scored on
other folds or data are not comparable, so a rerun with another setup is refused rather than
mixed in.
"""

import json
import os
from typing import Dict, List

from engine.errors import ConfigError
from engine.run.files import write_json_atomically


def trial_key(params: Dict) -> str:
    """A trial's identity, stable across runs: `batch_size=32,epochs=1,hidden=16-8,learning_rate=0.1`."""
    return ",".join(f"{name}={'-'.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"
                    for name, value in sorted(params.items()))


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
                    saved = json.load(file)
            except (OSError, ValueError) as error:
                raise ConfigError(f"{path} is not a readable results file ({error}): delete it, or pass "
                                  "another --output_dir") from None
            if saved.get("setup") != setup:
                raise ConfigError(f"{path} holds trials of another setup ({saved.get('setup')}, now {setup}): "
                                  "pass another --output_dir, or the same data, subset, folds, seed and mode")
            self.trials = saved["trials"]

    def finished(self, key: str) -> bool:
        return key in self.trials

    def add(self, key: str, record: Dict) -> None:
        """Records one finished trial and rewrites the file at once."""
        self.trials[key] = record
        write_json_atomically({"setup": self.setup, "trials": self.trials}, self.path)

    def ranked(self) -> List[Dict]:
        """Finished trials, best mean cross-validated accuracy first (ties: lower loss first)."""
        return sorted(self.trials.values(), key=lambda record: (-record["accuracy"], record["loss"]))

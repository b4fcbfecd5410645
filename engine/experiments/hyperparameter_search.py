"""Hyperparameter search as a library call: the trials not yet recorded, run, recorded, ranked.

`search` runs the candidates (engine/experiments/search_space.py draws them) that
OUTPUT_DIR/results.json does not hold yet, each scored by k-fold cross-validation
(engine/experiments/cross_validation.py), one at a time or `jobs` at once
(engine/experiments/search_trials.py); every finished trial is recorded as it finishes
(engine/experiments/search_store.py), so a stopped search picks up where it was; then the
ranked table and chart are written (engine/experiments/search_report.py).
`python -m engine.experiments.search` is the command line around it.
"""

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from engine.errors import ConfigError
from engine.experiments import search_report
from engine.experiments.search_store import ResultsFile, trial_key
from engine.experiments.search_trials import run_trials
from engine.run import files


def search(trials: Sequence[Dict], images: np.ndarray, labels: np.ndarray, num_classes: int, output_dir: str,
           setup: Dict, folds: int = 3, seed: int = 0, mode: str = "graph", jobs: int = 1,
           max_trials: Optional[int] = None, print_fn: Callable[[str], None] = print) -> List[Dict]:
    """Runs the `trials` not yet in OUTPUT_DIR/results.json, writes the reports; returns the ranked records.

    `setup` describes the data and scoring (it must match the results file's); `max_trials`
    stops after that many new trials, leaving the rest for a rerun.
    """
    check(folds, jobs, max_trials=max_trials)
    smallest = int(np.bincount(labels, minlength=num_classes).min())
    if smallest < folds:
        raise ConfigError(f"a class has only {smallest} of the {len(labels):,} images, fewer than the {folds} folds "
                          "that each need one: search on more images (--train_subset) or use fewer folds")
    with files.claim(output_dir):  # one search per directory: two would overwrite each other's results.json
        return _search(trials, images, labels, num_classes, output_dir, setup, folds, seed, mode, jobs, max_trials,
                       print_fn)


def _search(trials, images, labels, num_classes, output_dir, setup, folds, seed, mode, jobs, max_trials,
            print_fn) -> List[Dict]:
    store = ResultsFile(os.path.join(output_dir, "results.json"), setup)
    todo = [params for params in trials if not store.finished(trial_key(params))]
    print_fn(f"Search: {len(trials)} trials, {len(trials) - len(todo)} already finished in {store.path} "
             f"(skipped), {folds}-fold cross-validation on {len(labels):,} images, {jobs} at a time")
    todo = todo[:max_trials]
    done = 0

    def finish(params: Dict, record: Dict) -> None:
        nonlocal done
        store.add(trial_key(params), record)
        done += 1
        record = store.trials[trial_key(params)]
        outcome = ("diverged (a NaN or Inf loss: ranked last)" if record["diverged"] else
                   f"accuracy {record['accuracy']:.4f} ± {record['accuracy_std']:.4f}, loss {record['loss']:.4f}")
        print_fn(f"Trial {done}/{len(todo)} {trial_key(params)}: {outcome} ({record['seconds']:.1f} s)")

    run_trials(todo, finish, jobs, images, labels, num_classes, folds, seed, mode)
    ranked = store.ranked()
    caption = (f"{len(ranked)} trials, ranked by mean validation accuracy over {folds} folds "
               f"({setup.get('dataset', 'data')}, {len(labels):,} training images)")
    print_fn(search_report.write(ranked, output_dir, caption))
    return ranked


def check(folds: int, jobs: int, train_subset: int = 1, max_trials: Optional[int] = None) -> None:
    """Refuses settings that cannot work, before any data is loaded."""
    for name, value, least in (("folds", folds, 2), ("jobs", jobs, 1), ("train_subset", train_subset, 1),
                               ("max_trials", 1 if max_trials is None else max_trials, 1)):
        if value < least:
            raise ConfigError(f"--{name} must be >= {least}, got {value}")

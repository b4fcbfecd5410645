"""Running a search's trials: one after another in this process, or several at once in worker processes.

Processes, not threads: TensorFlow would serialise Python threads' graph building, and each
process has its own TensorFlow runtime. They are started with "spawn", a fresh interpreter
(forking a process that has started TensorFlow's thread pools can deadlock). Each worker
receives the data once, when it starts, and gives TensorFlow 1/`jobs` of the cores, so that
`jobs` trials share the machine instead of fighting over every core.
"""

import datetime
import math
import multiprocessing
import os
from concurrent import futures
from typing import Callable, Dict, Sequence

import numpy as np

from engine.experiments.cross_validation import cross_validate

_WORKER: Dict = {}  # a worker process's copy of the data and settings, received once


def trial(params: Dict, images: np.ndarray, labels: np.ndarray, num_classes: int, folds: int, seed: int,
          mode: str) -> Dict:
    """Cross-validates one candidate; returns its record: params, scores, and when and where it finished."""
    scores = cross_validate(params, images, labels, num_classes, folds, seed, mode)
    # Diverged: a validation loss that is not a number, or 100x an untrained model's (ln classes).
    diverged = not math.isfinite(scores["loss"]) or scores["loss"] > 100 * math.log(num_classes)
    return {"params": {**params, "hidden": list(params["hidden"])}, **scores, "diverged": diverged, "pid": os.getpid(),
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def _start_worker(threads: int, *data_and_settings) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    _WORKER["args"] = data_and_settings


def _worker_trial(params: Dict) -> Dict:
    return trial(params, *_WORKER["args"])


def run_trials(todo: Sequence[Dict], on_finish: Callable[[Dict, Dict], None], jobs: int, images: np.ndarray,
               labels: np.ndarray, num_classes: int, folds: int, seed: int, mode: str) -> None:
    """Runs every trial of `todo`, `jobs` at a time, calling `on_finish(params, record)` as each ends."""
    if jobs == 1:
        for params in todo:
            on_finish(params, trial(params, images, labels, num_classes, folds, seed, mode))
        return
    if not todo:
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with futures.ProcessPoolExecutor(jobs, multiprocessing.get_context("spawn"), _start_worker,
                                     (threads, images, labels, num_classes, folds, seed, mode)) as pool:
        running = {pool.submit(_worker_trial, params): params for params in todo}
        for future in futures.as_completed(running):
            on_finish(running[future], future.result())

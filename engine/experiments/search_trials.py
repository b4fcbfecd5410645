"""Running a search's trials: one after another in this process, or several at once in worker processes.

Processes, not threads: TensorFlow would serialise Python threads' graph building, and each
process has its own TensorFlow runtime. They are started with "spawn", a fresh interpreter
(forking a process that has started TensorFlow's thread pools can deadlock). Each worker
receives the data once, when it starts, and gives TensorFlow 1/`jobs` of the cores, so that
`jobs` trials share the machine instead of fighting over every core.

The workers die with the search and stay quiet on Ctrl-C: each re-imports the search's module
as `__mp_main__` first, where `engine.run.program.start` makes it ignore SIGINT (a Ctrl-C in the
terminal reaches the whole process group; the search alone answers it) and asks the kernel to
kill it when the search dies, even by SIGKILL. The search ends them itself on a signal or an
error (`_end_workers`). With no worker left, multiprocessing's resource tracker exits on its own.
"""

import datetime
import math
import multiprocessing
import os
from concurrent import futures
from typing import Callable, Dict, Sequence

import numpy as np

from engine import startup

_WORKER: Dict = {}  # a worker process's copy of the data and settings, received once


def trial(params: Dict, images: np.ndarray, labels: np.ndarray, num_classes: int, folds: int, seed: int,
          mode: str) -> Dict:
    """Cross-validates one candidate; returns its record: params, scores, and when and where it finished."""
    from engine.experiments.cross_validation import cross_validate  # TensorFlow: in a worker, after `_start_worker`

    scores = cross_validate(params, images, labels, num_classes, folds, seed, mode)
    # Diverged: a validation loss that is not a number, or 100x an untrained model's (ln classes).
    diverged = not math.isfinite(scores["loss"]) or scores["loss"] > 100 * math.log(num_classes)
    return {"params": {**params, "hidden": list(params["hidden"])}, **scores, "diverged": diverged, "pid": os.getpid(),
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def _start_worker(threads: int, *data_and_settings) -> None:
    tf = startup.import_tensorflow()  # a worker's TensorFlow starts as quietly as the search's own

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    _WORKER["args"] = data_and_settings


def _end_workers(pool: futures.ProcessPoolExecutor) -> None:
    """Stops the pool's workers now, mid-trial (Python 3.14 has `terminate_workers`; before it, only this)."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for process in {*getattr(pool, "_processes", {}).values(), *multiprocessing.active_children()}:
        process.terminate()  # and one still starting, not yet in the pool's own list
    pool.shutdown(wait=False, cancel_futures=True)


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
    pool = futures.ProcessPoolExecutor(jobs, multiprocessing.get_context("spawn"), _start_worker,
                                       (threads, images, labels, num_classes, folds, seed, mode))
    try:
        running = {pool.submit(_worker_trial, params): params for params in todo}
        for future in futures.as_completed(running):
            on_finish(running[future], future.result())
    except BaseException:
        _end_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True)

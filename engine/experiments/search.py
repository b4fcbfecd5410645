"""Hyperparameter search: grid or random search, each candidate scored by k-fold cross-validation.

    python -m engine.experiments.search --dataset=fashion_mnist --train_subset=6000 --hidden 64 128,64 \
        --batch_size 32 128 --epochs 5 --learning_rate 0.01 0.1 --folds 3
    python -m engine.experiments.search --strategy=random --n_iter=8 --learning_rate_range 0.003 0.3 ...

Grid search trains every combination of the listed values; random search draws `n_iter` of
them, and can draw the learning rate from a range (engine/experiments/search_space.py says why).

Each candidate is scored by `engine.experiments.cross_validation` on the first `train_subset` training
images (the test set is never looked at: choosing by it would leak it into the choice). The
ranked table goes to OUTPUT_DIR/ranking.csv, ranking.md and ranking.png; finished trials are
recorded in OUTPUT_DIR/results.json as they finish (engine/experiments/search_store.py), so a search that
is stopped or killed picks up where it was when rerun with the same command.

`--jobs N` runs N trials at once in separate processes, each with 1/N of the cores for
TensorFlow's threads. The default is 1: a trial's TensorFlow already keeps every core busy,
so on a small machine (this project's CI has 2 cores) parallel trials only compete.
"""

import argparse
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from engine.experiments import search_report  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402
from engine.run import files  # noqa: E402
from engine.run.faults import one_line  # noqa: E402
from engine.experiments.search_space import candidates  # noqa: E402
from engine.experiments.search_store import ResultsFile, data_fingerprint, trial_key  # noqa: E402
from engine.experiments.search_trials import run_trials  # noqa: E402


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


def _check_space(args: argparse.Namespace) -> None:
    """Refuses a search space that cannot be trained, before any data is loaded."""
    low, high = args.learning_rate_range or (None, None)
    checks = [
        (min(args.batch_size) >= 1 and min(args.epochs) >= 1 and min(args.learning_rate) > 0,
         f"--batch_size and --epochs must be >= 1 and --learning_rate > 0, got {args.batch_size}, {args.epochs} "
         f"and {args.learning_rate}"),
        (args.n_iter >= 1, f"--n_iter must be >= 1, got {args.n_iter}"),
        (low is None or (args.strategy == "random" and 0 < low < high),
         f"--learning_rate_range LOW HIGH needs --strategy=random and 0 < LOW < HIGH, got {low} {high} "
         f"with --strategy={args.strategy}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _hidden(text: str) -> tuple:
    try:
        sizes = tuple(int(size) for size in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive layer sizes like 128,64, got {text!r}")
    return sizes


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="search", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist", help="as train.py's --dataset")
    parser.add_argument("--data_dir", help="as train.py's --data_dir")
    parser.add_argument("--tfds_dir", help="as train.py's --tfds_dir")
    parser.add_argument("--train_subset", type=int, default=6000, help="search on the first N training images")
    parser.add_argument("--strategy", choices=("grid", "random"), default="grid")
    parser.add_argument("--n_iter", type=int, default=10, help="random search: how many candidates to draw")
    parser.add_argument("--hidden", type=_hidden, nargs="+", default=[(128,), (256, 128)], help="e.g. 64 128,64")
    parser.add_argument("--batch_size", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--epochs", type=int, nargs="+", default=[5])
    parser.add_argument("--learning_rate", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--learning_rate_range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="random search: draw the learning rate log-uniformly from [LOW, HIGH]")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="folds, sampling, weights and shuffling")
    parser.add_argument("--mode", choices=("eager", "graph", "xla"), default="graph")
    parser.add_argument("--jobs", type=int, default=1, help="trials run at once, in processes; default 1, since one trial already keeps a small machine's cores busy")
    parser.add_argument("--max_trials", type=int, help="stop after this many new trials; rerun to continue")
    parser.add_argument("--output_dir", default="runs/search")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status (0, or 2 after one error line)."""
    args = parse_args(argv)
    try:
        check(args.folds, args.jobs, args.train_subset, args.max_trials)
        _check_space(args)
        from engine.data import loading

        dataset = loading.load(args.dataset, args.data_dir, args.tfds_dir)
        images, labels = dataset.train_images[:args.train_subset], dataset.train_labels[:args.train_subset]
        space = {"hidden": args.hidden, "batch_size": args.batch_size, "epochs": args.epochs,
                 "learning_rate": args.learning_rate}
        trials = candidates(space, args.strategy, args.n_iter, args.seed, args.learning_rate_range)
        setup = {"dataset": dataset.name, "train_subset": len(labels), "folds": args.folds, "seed": args.seed,
                 "mode": args.mode, "data_fingerprint": data_fingerprint(images, labels)}
        search(trials, images, labels, dataset.num_classes, args.output_dir, setup, args.folds, args.seed,
               args.mode, args.jobs, args.max_trials, print_fn=lambda line: print(line, flush=True))
    except (ConfigError, DataError) as error:
        print(f"search: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("search: stopped by SIGINT; finished trials are in results.json: rerun the same command to "
              "continue", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"search: error: cannot write ({error.strerror or error}"
              f"{' writing ' + str(error.filename) if error.filename else ''}): free some space", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

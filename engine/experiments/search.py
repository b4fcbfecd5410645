"""Hyperparameter search: grid or random search, each candidate scored by k-fold cross-validation.

    python -m engine.experiments.search --dataset=fashion_mnist --train_subset=6000 --hidden=64 --hidden=128,64 \
        --batch_size=32 --batch_size=128 --epochs=5 --learning_rate=0.01 --learning_rate=0.1 --folds=3
    python -m engine.experiments.search --strategy=random --n_iter=8 --learning_rate_range=0.003,0.3 ...

A flag repeated lists the values to search over. Grid search trains every combination of them;
random search draws `n_iter` of them, and can draw the learning rate from a range
(engine/experiments/search_space.py says why).

Each candidate is scored by `engine.experiments.cross_validation` on the first `train_subset` training
images (the test set is never looked at: choosing by it would leak it into the choice). The
ranked table goes to OUTPUT_DIR/ranking.csv, ranking.md and ranking.png; finished trials are
recorded in OUTPUT_DIR/results.json as they finish (engine/experiments/search_store.py), so a search that
is stopped or killed picks up where it was when rerun with the same command.

`--jobs N` runs N trials at once in separate processes, each with 1/N of the cores for
TensorFlow's threads. The default is 1: a trial's TensorFlow already keeps every core busy,
so on a small machine (this project's CI has 2 cores) parallel trials only compete.
"""

import sys
from typing import Dict, Optional, Sequence

from absl import flags

from engine.run import cli, program
from engine.run.config import OPTIMIZER_FLAGS, learning_rate_problem

PROGRAM = "search"
FLAGS = cli.new_flag_values()
cli.define_data(FLAGS, "fashion_mnist")
flags.DEFINE_integer("train_subset", 6000, "Search on the first N training images.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_enum("strategy", "grid", ("grid", "random"), "Every combination, or n_iter drawn at random.",
                  flag_values=FLAGS)
flags.DEFINE_integer("n_iter", 10, "Random search: how many candidates to draw.", lower_bound=1, flag_values=FLAGS)
cli.define_hidden(FLAGS, "128 256,128", "Hidden layer sizes of one candidate; repeat for several.", multi=True)
flags.DEFINE_multi_integer("batch_size", [32, 128], "Batch size; repeat for several.", lower_bound=1,
                           flag_values=FLAGS)
flags.DEFINE_multi_integer("epochs", [5], "Epochs; repeat for several.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_multi_float("learning_rate", [0.01, 0.1], "Learning rate, > 0; repeat for several.",
                         flag_values=FLAGS)
flags.DEFINE_list("learning_rate_range", None, "LOW,HIGH: random search draws the learning rate log-uniformly "
                  "from [LOW, HIGH] (instead of --learning_rate).", flag_values=FLAGS)
flags.DEFINE_multi_enum("gradients", ["tape"], ("tape", "manual"), "How gradients are computed (tape, or the "
                        "manual backward pass); repeat for both.", flag_values=FLAGS)
flags.DEFINE_multi_enum("optimizer", ["sgd"], tuple(OPTIMIZER_FLAGS), "The optimizer (engine/optimizers/, Keras's "
                        "defaults besides the learning rate); repeat for several.", flag_values=FLAGS)
flags.DEFINE_integer("folds", 3, "Cross-validation folds.", lower_bound=2, flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Folds, sampling, weights and shuffling.", flag_values=FLAGS)
cli.define_mode(FLAGS, "graph")
flags.DEFINE_integer("jobs", 1, "Trials run at once, in processes; default 1, since one trial already keeps a "
                     "small machine's cores busy.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("max_trials", None, "Stop after this many new trials; rerun to continue.", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("output_dir", "runs/search", "Where results.json and ranking.csv/.md/.png go.",
                    flag_values=FLAGS)
flags.register_validator("learning_rate", lambda rates: min(rates) > 0, "every --learning_rate must be > 0",
                         flag_values=FLAGS)
flags.register_validator("learning_rate", lambda rates: not any(map(learning_rate_problem, rates)),
                         "every --learning_rate must be finite and not 0 in float32 (>= 1.2e-38)", flag_values=FLAGS)
flags.register_validator("seed", lambda seed: 0 <= seed < 2**31, "--seed must be in [0, 2**31)", flag_values=FLAGS)


def _learning_rate_range(values: Dict) -> bool:
    """--learning_rate_range=LOW,HIGH: two numbers, 0 < LOW < HIGH, and only with --strategy=random."""
    if values["learning_rate_range"] is None:
        return True
    try:
        low, high = (float(value) for value in values["learning_rate_range"])
    except ValueError:
        low, high = 0, 0
    if values["strategy"] != "random" or not 0 < low < high:
        raise flags.ValidationError(f"--learning_rate_range=LOW,HIGH needs --strategy=random and 0 < LOW < HIGH, got "
                                    f"{','.join(values['learning_rate_range'])} with --strategy={values['strategy']}")
    return True


flags.register_multi_flags_validator(["learning_rate_range", "strategy"], _learning_rate_range, flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def run_search() -> int:
    """The search the parsed FLAGS describe: data loaded, trials run, reports written; returns 0."""
    from engine import startup

    startup.import_tensorflow()
    from engine.data import loading
    from engine.experiments.hyperparameter_search import check, search
    from engine.experiments.search_space import candidates
    from engine.experiments.search_store import data_fingerprint

    check(FLAGS.folds, FLAGS.jobs, FLAGS.train_subset, FLAGS.max_trials)
    dataset = loading.load(FLAGS.dataset, FLAGS.data_dir, FLAGS.tfds_dir)
    images, labels = dataset.train_images[:FLAGS.train_subset], dataset.train_labels[:FLAGS.train_subset]
    space = {"hidden": FLAGS.hidden, "batch_size": FLAGS.batch_size, "epochs": FLAGS.epochs,
             "learning_rate": FLAGS.learning_rate, "gradients": FLAGS.gradients,
             "optimizer": FLAGS.optimizer}
    rate_range = tuple(map(float, FLAGS.learning_rate_range)) if FLAGS.learning_rate_range else None
    trials = candidates(space, FLAGS.strategy, FLAGS.n_iter, FLAGS.seed, rate_range)
    setup = {"dataset": dataset.name, "train_subset": len(labels), "folds": FLAGS.folds, "seed": FLAGS.seed,
             "mode": FLAGS.mode, "data_fingerprint": data_fingerprint(images, labels)}
    search(trials, images, labels, dataset.num_classes, FLAGS.output_dir, setup, FLAGS.folds, FLAGS.seed,
           FLAGS.mode, FLAGS.jobs, FLAGS.max_trials, print_fn=lambda line: print(line, flush=True))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line (argv[0] is the program); returns the exit status (README lists them)."""
    return program.run(PROGRAM, FLAGS, argv, run_search, outputs=("output_dir",),
                       stop_hint="Finished trials are in results.json: rerun the same command to continue")


if __name__ == "__main__":
    sys.exit(main())

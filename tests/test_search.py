"""Hyperparameter search: a ranked table from k-fold cross-validation, resumable trial by trial."""

import csv
import json

import numpy as np
import pytest

from engine.data import idx
from engine.experiments import hyperparameter_search, search
from engine.experiments.search_space import candidates
from engine.errors import ConfigError
from engine.experiments.search_store import trial_key

GRID = {"hidden": [(8,), (16,)], "batch_size": [32, 64], "epochs": [1], "learning_rate": [0.1]}


@pytest.fixture(scope="module")
def subset(fashion_mnist_dir):
    """The first 600 real Fashion-MNIST training images: every class has at least 3, for 3 folds."""
    images = idx.read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")[:600].astype(np.float32) / 255
    return images, idx.read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz")[:600].astype(np.int32)


def run(subset, output_dir, trials, **kwargs):
    lines: list = []
    setup = {"dataset": "fashion_mnist", "train_subset": 600, "folds": 3, "seed": 0, "mode": "eager"}
    ranked = hyperparameter_search.search(trials, *subset, 10, str(output_dir), setup, folds=3, mode="eager",
                           print_fn=lines.append, **kwargs)
    return ranked, "\n".join(lines)


def test_a_2x2_grid_with_3_fold_cv_ranks_every_trial_and_a_rerun_retrains_only_unfinished_ones(subset, tmp_path):
    trials = candidates(GRID)
    assert len(trials) == 4
    _, log = run(subset, tmp_path, trials, max_trials=2)  # as if killed after two trials
    assert "4 trials, 0 already finished" in log and "Trial 2/2" in log
    first = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert len(first) == 2

    ranked, log = run(subset, tmp_path, trials)
    assert "4 trials, 2 already finished" in log and "Trial 2/2" in log and "Trial 3/" not in log
    trials_now = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert {key: trials_now[key] for key in first} == first, "finished trials were not retrained"
    assert set(trials_now) == {trial_key(params) for params in trials}

    accuracies = [record["accuracy"] for record in ranked]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] > 0.3, "above chance (0.1)"
    for record in ranked:
        assert len(record["fold_accuracies"]) == 3
        assert record["accuracy"] == pytest.approx(np.mean(record["fold_accuracies"]))
    table = list(csv.DictReader(open(tmp_path / "ranking.csv")))
    assert [row["rank"] for row in table] == ["1", "2", "3", "4"]
    assert [float(row["accuracy"]) for row in table] == pytest.approx(accuracies, abs=5e-5)
    markdown = (tmp_path / "ranking.md").read_text()
    assert "| rank | hidden | batch_size | epochs | optimizer | learning_rate | gradients | accuracy |" in markdown
    assert markdown.count("\n| ") == 5  # header and four trials
    assert (tmp_path / "ranking.png").read_bytes().startswith(b"\x89PNG")

    _, log = run(subset, tmp_path, trials)
    assert "4 already finished" in log and "Trial 1/" not in log


def test_grid_search_is_every_combination_and_random_search_draws_n_iter_log_uniform_rates():
    assert len(candidates({**GRID, "learning_rate": [0.01, 0.1, 1.0]})) == 12
    drawn = candidates(GRID, "random", n_iter=20, seed=3, learning_rate_range=(0.001, 0.3))
    assert len(drawn) == 20 and drawn == candidates(GRID, "random", 20, 3, (0.001, 0.3))
    rates = np.array([params["learning_rate"] for params in drawn])
    assert rates.min() >= 0.001 and rates.max() <= 0.3
    assert (rates < 0.01).any() and (rates > 0.03).any(), "spread over orders of magnitude"
    assert {params["hidden"] for params in drawn} <= {(8,), (16,)}


def test_a_results_file_of_another_setup_is_refused_not_mixed_in(subset, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"setup": {"folds": 5}, "trials": {}}))
    with pytest.raises(ConfigError, match="holds trials of another setup"):
        run(subset, tmp_path, candidates(GRID))


def test_too_few_images_of_a_class_for_the_folds_is_one_clear_error(subset, tmp_path):
    with pytest.raises(ConfigError, match="a class has only 0 of the 20 images, fewer than the 3 folds"):
        hyperparameter_search.search(candidates(GRID), subset[0][:20], subset[1][:20], 11, str(tmp_path), {}, folds=3)


@pytest.mark.parametrize("argv, message", [
    (["--folds=1"], "flag --folds=1: 1 is not integer >= 2"),
    (["--jobs=0"], "flag --jobs=0: 0 is not a positive integer"),
    (["--train_subset=0"], "flag --train_subset=0: 0 is not a positive integer"),
    (["--max_trials=0"], "flag --max_trials=0: 0 is not a positive integer"),
    (["--learning_rate=0.1", "--learning_rate=0"], "flag --learning_rate=[0.1, 0.0]: every --learning_rate must be > 0"),
    (["--learning_rate_range=0.001,0.1"], "flags learning_rate_range=['0.001', '0.1'], strategy=grid: "
     "--learning_rate_range=LOW,HIGH needs --strategy=random and 0 < LOW < HIGH, got 0.001,0.1 with --strategy=grid"),
    (["--hidden=16,x"], "flag --hidden=16,x: expected a comma-separated list of positive integers like 256,128"),
    (["--mode=fast"], "flag --mode=fast: value should be one of <eager|graph|xla>"),
])
def test_bad_command_line_settings_get_one_error_line_and_exit_status_2(argv, message, capsys):
    assert search.main(["search", *argv]) == 2
    assert capsys.readouterr().err == f"search: error: {message}\n"


def test_repeated_flags_list_the_values_searched_over():
    search.FLAGS.unparse_flags()
    search.FLAGS(["search", "--hidden=64", "--hidden=128,64", "--batch_size=32", "--batch_size=128",
                  "--learning_rate=0.01"])
    assert search.FLAGS.hidden == [(64,), (128, 64)] and search.FLAGS.batch_size == [32, 128]
    assert search.FLAGS.learning_rate == [0.01] and search.FLAGS.epochs == [5]


@pytest.fixture(scope="module")
def small_fashion_dir(tmp_path_factory, fashion_mnist_dir):
    """Real Fashion-MNIST laid out as a small data set (600 train, 10 test images) for the command line."""
    folder = tmp_path_factory.mktemp("small_fashion")
    for split, count in (("train", 600), ("t10k", 10)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte.gz"
            idx.write_idx(folder / name, idx.read_idx(fashion_mnist_dir / name)[:count])
    return folder


def search_argv(data_dir, output_dir, *extra):
    return ["--dataset=fashion_mnist", f"--data_dir={data_dir}", f"--tfds_dir={output_dir}/tfds", "--hidden=8",
            "--hidden=16", "--batch_size=32", "--batch_size=64", "--epochs=1", "--learning_rate=0.1", "--folds=3",
            "--mode=eager", f"--output_dir={output_dir}", *extra]


def test_the_command_line_loads_the_data_and_writes_the_ranking(small_fashion_dir, tmp_path, capsys):
    assert search.main(["search", *search_argv(small_fashion_dir, tmp_path, "--max_trials=1")]) == 0
    out = capsys.readouterr().out
    assert "Search: 4 trials, 0 already finished" in out and "on 600 images, 1 at a time" in out
    assert len(list(csv.DictReader(open(tmp_path / "ranking.csv")))) == 1


def test_gradients_is_a_searched_flag_like_the_others(small_fashion_dir, tmp_path, capsys):
    """--gradients=tape --gradients=manual doubles the grid; each trial trains its own way, and on the same
    folds and starting weights the two ways score the same to float32 rounding."""
    argv = search_argv(small_fashion_dir, tmp_path, "--gradients=tape", "--gradients=manual")
    argv.remove("--hidden=16")
    argv.remove("--batch_size=64")
    assert search.main(["search", *argv]) == 0
    rows = list(csv.DictReader(open(tmp_path / "ranking.csv")))
    assert sorted(row["gradients"] for row in rows) == ["manual", "tape"]
    tape, manual = (next(row for row in rows if row["gradients"] == way) for way in ("tape", "manual"))
    assert abs(float(tape["accuracy"]) - float(manual["accuracy"])) <= 0.002


def test_optimizer_is_a_searched_flag_and_each_trial_trains_with_its_own(small_fashion_dir, tmp_path):
    """--optimizer=sgd --optimizer=adam doubles the grid; at one learning rate the two optimizers train
    differently, so their scores differ, and each trial's parameters name its optimizer."""
    argv = search_argv(small_fashion_dir, tmp_path, "--optimizer=sgd", "--optimizer=adam")
    argv.remove("--hidden=16")
    argv.remove("--batch_size=64")
    assert search.main(["search", *argv]) == 0
    rows = list(csv.DictReader(open(tmp_path / "ranking.csv")))
    assert sorted(row["optimizer"] for row in rows) == ["adam", "sgd"]
    trials = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert sorted(record["params"]["optimizer"] for record in trials.values()) == ["adam", "sgd"]
    sgd, adam = (next(row for row in rows if row["optimizer"] == name) for name in ("sgd", "adam"))
    assert sgd["accuracy"] != adam["accuracy"]


@pytest.mark.slow
def test_killed_mid_search_and_rerun_it_keeps_finished_trials_and_runs_the_rest_in_two_processes(
        small_fashion_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    command = [sys.executable, "-m", "engine.experiments.search", *search_argv(small_fashion_dir, tmp_path)]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    results = tmp_path / "results.json"
    deadline = time.monotonic() + 300
    while not (results.exists() and json.loads(results.read_text())["trials"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = json.loads(results.read_text())["trials"]
    assert 1 <= len(finished) < 4, "killed after its first trial, before its last"

    rerun = subprocess.run([*command, "--jobs=2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"4 trials, {len(finished)} already finished" in rerun.stdout
    trials = json.loads(results.read_text())["trials"]
    assert len(trials) == 4 and {key: trials[key] for key in finished} == finished
    assert len({trials[key]["pid"] for key in set(trials) - set(finished)} - {first.pid}) >= 1

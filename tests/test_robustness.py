"""Issue 14, as specifications: every README promise holds when someone tries to break it.

Each train.py probe runs in-process through `train.main` on 640 real digits (TensorFlow imported
once) and asserts the exit status, one error line without a traceback, and that no file of the
output directory changed (hashed before and after). The lock is tested with real processes, since
a flock is per open file. `tests/red_team.py` runs every probe as processes, `test_red_team.py`
drives it.
"""

import gzip
import hashlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import idx
from engine.errors import ConfigError, DataError
from engine.experiments.search_store import ResultsFile
from engine.run import faults, files
from tests.conftest import REPO, mnist_subset
from tests.test_reliability_cli import error_line, run_train, tfds_dir, tiny_mnist_dir  # noqa: F401


def snapshot(directory: Path) -> dict:
    """sha256 of every file under `directory`, but the lock file (it holds the last holder's pid)."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file() and path.name != files.LOCK}


@pytest.fixture(scope="module")
def other_mnist_dir(tmp_path_factory, mnist_t10k_dir) -> Path:
    """As tiny_mnist_dir, the same sizes, other digits: 640 train from t10k's 1700-2339."""
    folder = tmp_path_factory.mktemp("other_mnist")
    mnist_subset(mnist_t10k_dir, folder, train=2340, test=160)
    images = idx.read_idx(folder / "train-images-idx3-ubyte.gz")[1700:]
    labels = idx.read_idx(folder / "train-labels-idx1-ubyte.gz")[1700:]
    idx.write_idx(folder / "train-images-idx3-ubyte.gz", images)
    idx.write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture
def finished_run(run_train, tmp_path) -> Path:  # noqa: F811
    """A run of 2 epochs, finished: checkpoints ckpt-1 and ckpt-2, history.json, metrics.png."""
    out = tmp_path / "run"
    assert run_train(f"--output_dir={out}")[0] == 0
    return out


def refused(run_train, out: Path, *flags, status=2, **kwargs) -> str:  # noqa: F811
    """Runs train.py expecting `status`, one line and no file changed; returns the line."""
    before = snapshot(out)
    code, _, err = run_train(f"--output_dir={out}", *flags, **kwargs)
    line = error_line(err)
    assert code == status and len(err.strip().splitlines()) == 1 and line.startswith("train.py: error: "), err
    assert snapshot(out) == before
    return line


def test_checkpoints_of_other_data_of_the_same_size_are_refused_by_its_fingerprint(run_train, finished_run,  # noqa: F811
                                                                                   other_mnist_dir):
    line = refused(run_train, finished_run, "--epochs=3", data_dir=other_mnist_dir)
    assert "is a checkpoint of a different run (data_fingerprint '" in line


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_damaged_or_missing_index_is_refused_naming_the_checkpoints_found(run_train, finished_run, damage):  # noqa: F811
    index = finished_run / "checkpoints" / "checkpoint"
    index.unlink() if damage == "deleted" else index.write_text("garbage {{{")
    line = refused(run_train, finished_run, "--epochs=3")
    assert (f"{finished_run}/checkpoints/checkpoint, the index of the checkpoints, is missing or damaged, and ckpt-1, "
            f"ckpt-2 are there: pass --resume_from={finished_run}/checkpoints/ckpt-2 to resume from the newest") in line

    status, out, _ = run_train(f"--output_dir={finished_run}", "--epochs=3",
                               f"--resume_from={finished_run}/checkpoints/ckpt-1")
    assert status == 0 and f"Resuming from {finished_run}/checkpoints/ckpt-1: epoch 2, 0 steps" in out
    assert [e["epoch"] for e in json.loads((finished_run / "history.json").read_text())["epochs"]] == [1, 2, 3]


def test_a_corrupted_newest_checkpoint_points_at_the_newest_intact_one(run_train, finished_run):  # noqa: F811
    data = next((finished_run / "checkpoints").glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    line = refused(run_train, finished_run, "--epochs=3")
    assert f"pass --resume_from={finished_run}/checkpoints/ckpt-1 to resume from the newest intact checkpoint" in line


def test_noresume_deletes_nothing_when_the_new_run_fails_its_checks_and_swaps_at_its_first_checkpoint(
        run_train, finished_run, tmp_path):  # noqa: F811
    (tmp_path / "file").write_text("x")
    line = refused(run_train, finished_run, "--noresume", f"--tensorboard_dir={tmp_path / 'file'}/tb")
    assert f"--tensorboard_dir {tmp_path / 'file'}/tb is not writable (Not a directory)" in line
    status, out, _ = run_train(f"--output_dir={finished_run}", "--noresume", "--epochs=1", "--hidden=8")
    assert status == 0 and "are deleted once this run's first checkpoint is written" in out
    assert sorted(path.name for path in (finished_run / "checkpoints").glob("*.index")) == ["ckpt-1.index"]
    assert not (finished_run / "checkpoints.new").exists() and not (finished_run / "checkpoints.old").exists()


def test_rerunning_with_fewer_epochs_than_trained_is_refused_not_recorded(run_train, finished_run):  # noqa: F811
    line = refused(run_train, finished_run, "--epochs=1")
    assert "has 2 epochs trained, more than --epochs=1: pass --epochs=2 or more" in line


def test_half_written_temp_checkpoint_folders_are_cleared_on_resume(run_train, finished_run):  # noqa: F811
    (finished_run / "checkpoints" / "ckpt-7_temp").mkdir()
    assert run_train(f"--output_dir={finished_run}", "--epochs=3")[0] == 0
    assert not list((finished_run / "checkpoints").glob("*_temp"))


@pytest.mark.parametrize("flag, fragment", [
    ("--seed=-1", "--seed must be in [0, 2**31), got -1"),
    ("--validation_split=1e-6", "--validation_split 1e-06 of 640 examples leaves an empty training or validation set"),
    ("--hidden=100000000", "parameters and needs about"),
    ("--tfds_dir=/dev/null/tfds", "--tfds_dir /dev/null/tfds is not writable (Not a directory)"),
    ("--divergence_factor=1", "--divergence_factor must be > 1"),
    ("--hidden=" + ",".join(["7"] * 3000 + ["-1"]), "expected a comma-separated list of positive integers"),
])
def test_bad_settings_are_one_short_line_exit_2_and_leave_no_directory(run_train, tmp_path, flag, fragment):  # noqa: F811
    status, _, err = run_train(f"--output_dir={tmp_path / 'out'}", flag)
    line = error_line(err)
    assert status == 2 and fragment in line and len(line) <= 820, line
    assert not (tmp_path / "out").exists()


def test_checkpoints_being_a_file_is_refused_before_training(run_train, tmp_path):  # noqa: F811
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "checkpoints").write_text("precious")
    line = refused(run_train, tmp_path / "out")
    assert "checkpoints is a file, not the checkpoint directory" in line


def test_an_unreadable_data_file_is_one_line(run_train, tiny_mnist_dir, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    for path in tiny_mnist_dir.iterdir():
        (data / path.name).write_bytes(path.read_bytes())
    (data / "train-images-idx3-ubyte.gz").unlink()
    (data / "train-images-idx3-ubyte.gz").symlink_to("/proc/self/mem")  # EIO on read, even for root
    status, _, err = run_train(f"--output_dir={tmp_path / 'out'}", data_dir=data)
    assert status == 2 and "train-images-idx3-ubyte.gz: cannot read (Input/output error)" in error_line(err)


@pytest.mark.parametrize("damaged, damage", [
    ("*.tfrecord*", lambda data: data[:200]),  # cut records
    ("dataset_info.json", lambda data: b"garbage, not JSON"),  # TFDS's metadata
])
def test_a_corrupted_prepared_cache_is_rebuilt_from_the_files_with_a_line_saying_so(run_train, tiny_mnist_dir,  # noqa: F811
                                                                                    tmp_path, damaged, damage):
    import train

    tfds = tmp_path / "tfds"
    assert run_train(f"--output_dir={tmp_path / 'a'}", "--epochs=1", f"--tfds_dir={tfds}")[0] == 0
    found = list(tfds.rglob(damaged))
    assert found, damaged
    for record in found:
        record.write_bytes(damage(record.read_bytes()))
    status, out, _ = run_train(f"--output_dir={tmp_path / 'b'}", "--epochs=1", f"--tfds_dir={tfds}")
    assert status == 0 and "is damaged (" in out and "); preparing it again from the IDX files" in out
    assert train.FLAGS.tfds_dir == str(tfds)


def test_a_loss_far_above_the_first_steps_stops_a_finite_divergence(run_train, tmp_path):  # noqa: F811
    status, _, err = run_train(f"--output_dir={tmp_path}", "--hidden=32", "--learning_rate=1e3",
                               "--checkpoint_every=1", "--steps_per_execution=1")
    line = error_line(err)
    assert status == 1 and len(err.strip().splitlines()) == 1, err
    assert "above 100x the first step's loss" in line and "(--divergence_factor): training diverged" in line
    assert not (tmp_path / "history.json").exists()


def test_the_divergence_bound_is_checked_per_step_and_nan_is_still_caught():
    faults.check_losses(np.array([2.3, 150.0, 229.0]), epoch=1, last_step=3, first_loss=2.3, factor=100)
    with pytest.raises(faults.NumericalFault, match=r"the loss is 231 at epoch 1, step 3, above 100x the first"):
        faults.check_losses(np.array([2.3, 150.0, 231.0]), epoch=1, last_step=3, first_loss=2.3, factor=100)
    with pytest.raises(faults.NumericalFault, match=r"^the loss is nan at epoch 2, step 1: training diverged$"):
        faults.check_losses(np.array([np.nan]), epoch=2, last_step=1, first_loss=2.3, factor=100)


HOLD = ("import sys, time; from engine.run import files\n"
        "with files.claim(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n")


def test_a_second_run_on_a_locked_output_dir_is_refused_naming_the_holder_and_a_killed_holder_does_not_block(
        run_train, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        line = refused(run_train, out)
        assert line == (f"train.py: error: --output_dir {out} is in use by another run (pid {holder.pid}): wait for it "
                        "to finish, stop it, or pass another --output_dir")
    finally:
        holder.kill()
        holder.wait()
    status, out_text, _ = run_train(f"--output_dir={out}", "--epochs=1")  # the kernel released the flock
    assert status == 0 and "Epoch 1/1" in out_text


@pytest.mark.slow
def test_two_train_processes_on_one_output_dir_one_is_refused_and_the_files_are_the_others(tiny_mnist_dir, tfds_dir,  # noqa: F811
                                                                                          tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, str(REPO / "train.py"), "--dataset=mnist", f"--data_dir={tiny_mnist_dir}",
               f"--tfds_dir={tfds_dir}", "--mode=graph", f"--output_dir={out}"]
    first = subprocess.Popen([*command, "--hidden=32", "--epochs=1000"], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while first.poll() is None and not (out / files.LOCK).exists():
        time.sleep(0.05)
    second = subprocess.run([*command, "--hidden=64", "--epochs=1"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    first.terminate()  # SIGTERM: checkpoints and exits 143
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 143, first_err[-2000:]
    assert second.returncode == 2 and second.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --output_dir {out} is in use by another run (pid {first.pid}): wait for it to finish, "
        "stop it, or pass another --output_dir")
    assert "Traceback" not in second.stderr and "Wrote" not in second.stdout
    import tensorflow as tf

    identity = tf.train.load_checkpoint(str(out / "checkpoints")).get_tensor("identity/.ATTRIBUTES/VARIABLE_VALUE")
    assert json.loads(identity.decode())["hidden"] == [32]


def test_a_gzip_that_expands_past_its_header_is_refused_after_reading_one_byte_more(tmp_path):
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as file:
        file.write(struct.pack(">HBBI", 0, 8, 1, 10) + bytes(10))
        for _ in range(64):  # 64 MB more, a 64 KB file
            file.write(bytes(1 << 20))
    with pytest.raises(idx.IdxError, match="trailing bytes: header says 10 items"):
        idx.read_idx(path)
    bomb = tmp_path / "claims.gz"
    bomb.write_bytes(gzip.compress(struct.pack(">HBBIII", 0, 8, 3, 100000, 1000, 1000)))
    with pytest.raises(idx.IdxError, match="more than a .*-byte gzip can hold"):
        idx.read_idx(bomb)


def test_search_results_are_strict_json_a_diverged_trial_is_null_and_ranked_last(tmp_path):
    store = ResultsFile(str(tmp_path / "results.json"), {"folds": 2})
    store.add("a", {"params": {"hidden": [8]}, "accuracy": 0.1, "loss": float("nan"), "accuracy_std": 0.0,
                    "fold_accuracies": [0.1, float("inf")], "seconds": 1.0})
    store.add("b", {"params": {"hidden": [8]}, "accuracy": 0.05, "loss": 2.5, "accuracy_std": 0.0, "seconds": 1.0})
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    saved = json.loads(text)["trials"]
    assert saved["a"]["loss"] is None and saved["a"]["diverged"] is True and saved["b"]["diverged"] is False
    assert [record["loss"] for record in store.ranked()] == [2.5, None]


@pytest.mark.parametrize("text", ["[1, 2]", '{"setup": {"folds": 2}, "trials": 5}', '{"trials": {"a": 1}}', "{no"])
def test_a_malformed_results_file_is_one_clear_error(tmp_path, text):
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(ConfigError, match="results.json is not (a results file of this search|a readable results)"):
        ResultsFile(str(tmp_path / "results.json"), {"folds": 2})


def test_error_lines_are_capped_and_single():
    assert faults.one_line("a\nb  c") == "a b c"
    assert len(faults.one_line("x" * 5662)) == 800 and "x..." in faults.one_line("x" * 5662)


def test_a_long_path_is_cut_in_the_middle_so_the_reason_and_the_fix_stay():
    line = faults.one_line(f"--output_dir /{'p' * 6047}/run is not writable (Not a directory): pass a writable directory")
    assert len(line) <= 800 and line.startswith("--output_dir /ppp") and "...ppp" in line
    assert line.endswith("/run is not writable (Not a directory): pass a writable directory")
    assert faults.one_line("name \x1b[31mred\x1b[0m") == "name \\x1b[31mred\\x1b[0m"  # a terminal would obey ESC


def test_a_data_problem_raised_while_fingerprinting_names_the_file(tmp_path):
    from engine.data import tfds_idx

    (tmp_path / "link").symlink_to("/proc/self/mem")
    with pytest.raises(DataError, match=r"link: cannot read \(Input/output error\)"):
        tfds_idx.fingerprint([tmp_path / "link"])

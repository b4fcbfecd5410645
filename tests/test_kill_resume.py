"""The kill test: train.py stopped at a random checkpoint by SIGKILL, SIGTERM or SIGINT, then run again
with the same flags, ends with the same weights and history as a run never stopped — bit for bit.

The stopped run is a real `python train.py` process (signals need one); the uninterrupted run and
the resumption run in-process through `train.main`, to pay TensorFlow's start-up only once.
"""

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_reliability_cli import final_weights, numbers, run_train, tfds_dir, tiny_mnist_dir  # noqa: F401

# 640 images in batches of 16: 40 steps an epoch, a checkpoint every 6 (inside blocks of up to 4).
FLAGS = ("--hidden=16", "--epochs=2", "--batch_size=16", "--momentum=0.9", "--steps_per_execution=4",
         "--checkpoint_every=6")


def stop_at_a_random_checkpoint(command: list, checkpoints: Path, signum: int) -> subprocess.CompletedProcess:
    """Runs `command`, and sends `signum` a random moment after its checkpoint number 2 to 8 is complete."""
    target = random.randint(2, 8)
    print(f"sending signal {signum} a moment after checkpoint {target} is complete")  # shown on failure
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        index = checkpoints / "checkpoint"
        found = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', index.read_text() if index.exists() else "", re.M)
        if found and int(found.group(1)) >= target:
            time.sleep(random.uniform(0, 0.02))
            process.send_signal(signum)
            break
        time.sleep(0.002)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("mode, gradients, signum, exit_status", [
    ("graph", "tape", signal.SIGKILL, -signal.SIGKILL),
    ("eager", "manual", signal.SIGTERM, 143),
    pytest.param("eager", "tape", signal.SIGKILL, -signal.SIGKILL, marks=pytest.mark.slow),
    pytest.param("graph", "tape", signal.SIGTERM, 143, marks=pytest.mark.slow),
    pytest.param("graph", "manual", signal.SIGINT, 130, marks=pytest.mark.slow),
    pytest.param("xla", "tape", signal.SIGKILL, -signal.SIGKILL, marks=pytest.mark.slow),
    pytest.param("xla", "manual", signal.SIGKILL, -signal.SIGKILL, marks=pytest.mark.slow),
])
def test_a_stopped_run_resumes_to_the_uninterrupted_result_bitwise(run_train, tiny_mnist_dir, tfds_dir,  # noqa: F811
                                                                   tmp_path, mode, gradients, signum, exit_status):
    flags = (f"--mode={mode}", f"--gradients={gradients}", *FLAGS)
    stopped_and_resumed(run_train, tiny_mnist_dir, tfds_dir, tmp_path, flags, signum, exit_status)


# Each optimizer's slots (Adam's two moments, RMSprop's mean square and momentum) go into the checkpoint.
OPTIMIZERS = [
    ("adam", ("--learning_rate=0.003", "--beta_1=0.8", "--epsilon=1e-6")),
    pytest.param("adamw", ("--learning_rate=0.003", "--weight_decay=0.01"), marks=pytest.mark.slow),
    pytest.param("rmsprop", ("--learning_rate=0.003", "--rho=0.8", "--momentum=0.5"), marks=pytest.mark.slow),
    # float32 weights and slots, bfloat16 compute: the checkpoint holds the same state
    ("sgd", ("--precision=mixed_bfloat16", "--momentum=0.9")),
    pytest.param("adam", ("--precision=mixed_bfloat16", "--learning_rate=0.003", "--mode=xla"), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("optimizer, settings", OPTIMIZERS, ids=lambda value: "-".join(value) if isinstance(value, tuple) else value)
def test_every_optimizer_resumes_to_the_uninterrupted_result_bitwise(run_train, tiny_mnist_dir, tfds_dir,  # noqa: F811
                                                                    tmp_path, optimizer, settings):
    flags = ("--mode=graph", f"--optimizer={optimizer}", *settings,  # a --mode in settings comes later and wins
             *(flag for flag in FLAGS if not flag.startswith("--momentum")))
    stopped_and_resumed(run_train, tiny_mnist_dir, tfds_dir, tmp_path, flags, signal.SIGKILL, -signal.SIGKILL)


def stopped_and_resumed(run_train, tiny_mnist_dir, tfds_dir, tmp_path, flags, signum, exit_status):  # noqa: F811
    """A run of `flags` stopped by `signum` after a random checkpoint and resumed equals, bit for bit,
    the same run never stopped."""
    assert run_train(f"--output_dir={tmp_path / 'reference'}", *flags)[0] == 0

    stopped = tmp_path / "stopped"
    command = [sys.executable, str(REPO / "train.py"), "--dataset=mnist", f"--data_dir={tiny_mnist_dir}",
               f"--tfds_dir={tfds_dir}", *flags, f"--output_dir={stopped}"]
    result = stop_at_a_random_checkpoint(command, stopped / "checkpoints", signum)
    assert result.returncode == exit_status, result.stderr[-3000:]
    assert not (stopped / "history.json").exists(), "the run must have been stopped before its end"
    if signum != signal.SIGKILL:
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"train.py: stopped by {signal.Signals(signum).name} at epoch "), last
        assert f"; checkpoint written to {stopped}/checkpoints/ckpt-" in last
        assert f". To resume: python {REPO / 'train.py'} --dataset=mnist" in last and "--noresume" not in last

    status, out, err = run_train(f"--output_dir={stopped}", *flags)
    assert status == 0 and f"Resuming from {stopped}/checkpoints/ckpt-" in out, err[-3000:]
    assert numbers(stopped) == numbers(tmp_path / "reference")
    reference = final_weights(tmp_path / "reference")
    for name, value in final_weights(stopped).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)

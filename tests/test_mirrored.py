"""MirroredStrategy on 2 logical CPU devices computes what one device computes.

One subprocess (tests/mirrored_run.py: the CPU must be split before TensorFlow starts)
trains the reference MLP with SGD + momentum for 100 steps of global batch 64 in order, on
one device and under the strategy (graph mode, 16 steps per call; 1 step per call for 20
steps; eager for 5; the manual backward pass for all 100), then cross-restores checkpoints;
and Adam (amsgrad), AdamW and RMSprop (centered, momentum, weight decay) for 32 steps each. Each replica sees 32 examples per step, so equal numbers
mean the loss scaling, the gradient sum and the metric reduction are all right.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

TOLERANCE = 1e-5  # the issue's: max relative loss difference, max absolute weight difference


@pytest.fixture(scope="module")
def result(fashion_mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "result.json"
    run = subprocess.run([sys.executable, "-m", "tests.mirrored_run", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_strategy_has_two_replicas_on_two_logical_cpu_devices(result):
    assert result["replicas"] == 2
    assert [device.rsplit("/", 1)[-1] for device in result["devices"]] == ["device:CPU:0", "device:CPU:1"]


def test_100_steps_match_one_device_in_per_step_loss_and_final_weights_and_slots(result):
    mirrored, single = result["runs"]["mirrored_graph_k16"], result["runs"]["single"]
    losses, expected = np.array(mirrored["losses"]), np.array(single["losses"])
    assert len(losses) == len(expected) == 100
    assert np.max(np.abs(losses - expected) / np.abs(expected)) <= TOLERANCE
    assert expected[-1] < 0.8 * expected[0]  # it learned: the comparison is not of two stuck runs
    for name in ("weights", "velocities"):
        for got, want in zip(mirrored[name], single[name]):
            np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("run, steps", [("mirrored_graph_k1", 20), ("mirrored_eager", 5),
                                        ("mirrored_manual_k16", 100)])
def test_one_step_per_call_and_eager_give_the_same_losses_as_one_device(result, run, steps):
    losses = np.array(result["runs"][run]["losses"])
    expected = np.array(result["runs"]["single"]["losses"][:steps])  # the same batches, in order
    assert len(losses) == steps and np.max(np.abs(losses - expected) / np.abs(expected)) <= TOLERANCE


def test_epoch_and_evaluation_metrics_sum_over_both_replicas(result):
    """Each replica counts only its half: a metric read that forgot the other would be off."""
    mirrored, single = result["runs"]["mirrored_graph_k16"], result["runs"]["single"]
    for logs in ("epoch", "eval"):
        for key in ("loss", "accuracy"):
            assert mirrored[logs][key] == pytest.approx(single[logs][key], rel=1e-6), (logs, key)


@pytest.mark.parametrize("direction, copies", [("mirrored_to_single", 6), ("single_to_mirrored", 12)])
def test_checkpoints_restore_across_strategies_exactly(result, direction, copies):
    """Weights and velocity slots saved under the strategy load on one device, and back."""
    restored = result["checkpoints"][direction]
    assert restored["max_abs_diff"] == 0.0
    assert restored["iterations"] == 100
    assert restored["copies"] == copies  # 6 variables, on 1 device or on both replicas


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
def test_every_optimizer_with_all_its_slots_matches_one_device(result, name):
    """The replicated step uses only the optimizer's protocol (apply_gradients, iterations), so
    every optimizer's slots and weight decay are updated on each replica as on one device."""
    mirrored, single = result["runs"][f"mirrored_{name}"], result["runs"][f"single_{name}"]
    losses, expected = np.array(mirrored["losses"]), np.array(single["losses"])
    assert len(losses) == len(expected) == 32
    assert np.max(np.abs(losses - expected) / np.abs(expected)) <= TOLERANCE
    assert expected[-1] < 0.8 * expected[0]
    assert len(mirrored["slots"]) == len(single["slots"]) >= 2 * 6  # at least two slots per variable
    for got, want in zip(mirrored["weights"] + mirrored["slots"], single["weights"] + single["slots"]):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)

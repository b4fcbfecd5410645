"""The engine computes what tf.keras computes: measured with engine.compare.parity on real Fashion-MNIST.

Bounds (float32, CPU, op determinism on), from the parity issue: forward probabilities within
1e-6; per-step loss within 1e-5 relative over the first 200 steps; gradients within 1e-6 at
step 1; weights within 1e-4 after one epoch where no ReLU split comes first; after 5 epochs,
test accuracy within 0.2 points and test loss within 2e-3 of Keras's.
"""

import dataclasses
import json

import pytest

from engine import execution
from engine.compare import parity


def assert_within_bounds(summary):
    """All bounds, where no ReLU split separates the runs before the end of epoch 1."""
    assert summary["forward_max_abs_diff"] <= 1e-6, summary
    assert summary["step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["fit_step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["step1_gradient_max_abs_diff"] <= 1e-6, summary
    assert summary["epoch1_weights_max_abs_diff"] <= 1e-4, summary


def run_parity(data, examples=None, **changes):
    setup = dataclasses.replace(parity.ParitySetup(), **changes)
    train = (data.train_images[:examples], data.train_labels[:examples])
    test = (data.test_images[:2000], data.test_labels[:2000]) if examples else (data.test_images, data.test_labels)
    return parity.compare(setup, train, test)


@pytest.fixture(scope="module")
def reference_report(fashion_mnist):
    """The reference configuration for 5 epochs on all 60,000 images, in the default (graph)
    mode, with 700 steps compared one by one (the bounds cover the first 200; the first ReLU split
    came at step 630 on the 2-core AMD EPYC, TensorFlow 2.21, and after step 700 on the Intel Xeon)."""
    return run_parity(fashion_mnist, epochs=5, mode="graph", recorded_steps=700)


def test_reference_configuration_matches_keras_step_by_step(reference_report):
    summary = reference_report.summary()
    assert summary["forward_max_abs_diff"] <= 1e-6, summary
    assert summary["step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["fit_step_loss_max_rel_diff"] <= 1e-5, summary
    assert summary["step1_gradient_max_abs_diff"] <= 1e-6, summary
    assert len(reference_report.steps) == 700 and reference_report.forward["examples"] == 10_000


def test_the_weights_agree_after_one_epoch_unless_a_relu_split_separates_them(reference_report):
    """Within 1e-4 after epoch 1, or, where a ReLU split came first, the mechanism of the drift measured.

    Whether a split comes in the first epoch depends on the CPU, because its seed is the fused
    kernels' summation order, which no sequence of TensorFlow ops reproduces. Measured: on the
    2-core AMD EPYC (Zen 4) the first split came at step 630 and the epoch-1 weights differed by
    1.0e-3; on the 2-core Intel Xeon with AMX there was none in 700 steps and they differed by
    1.6e-6. Before a split, weights agree to ~1e-7 and gradients to ~1e-8; at the split step the
    gradients jump apart (AMD: 4.9e-5, against at most 6e-7 over the 629 steps before it)."""
    summary = reference_report.summary()
    split = summary["first_relu_split_step"]
    if not split:  # no split in the recorded steps
        assert summary["epoch1_weights_max_abs_diff"] <= 1e-4, summary
        return
    before, at = reference_report.steps[:split - 1], reference_report.steps[split - 1]
    assert split > 1
    assert max(s["weights_max_abs_diff"] for s in before) <= 1e-6
    assert max(max(s["gradient_max_abs_diff"]) for s in before) <= 1e-6
    assert max(at["gradient_max_abs_diff"]) > 20 * max(max(s["gradient_max_abs_diff"]) for s in before)


def test_after_five_epochs_test_accuracy_and_loss_match_keras(reference_report):
    """Accuracy within 0.2 points; the test loss within 1e-3 of Keras's where the runs stay together,
    2e-3 over five epochs, by which time a ReLU split has made them two trainings from one start on
    every CPU measured (test-loss differences 0.98e-3 on the AMD EPYC, 1.29e-3 on the Intel Xeon)."""
    summary = reference_report.summary()
    assert summary["final_test_accuracy_diff"] <= 0.002, summary
    assert summary["final_test_loss_diff"] <= 2e-3, summary
    assert reference_report.epochs[-1]["engine_test_accuracy"] > 0.84, "and both actually learned"


def test_the_report_is_written_as_json(reference_report, tmp_path):
    reference_report.to_json(tmp_path / "parity.json")
    written = json.loads((tmp_path / "parity.json").read_text())
    assert written["summary"] == pytest.approx(reference_report.summary())
    assert written["setup"]["hidden"] == [256, 128] and len(written["epochs"]) == 5


# Every mode one step per call, and the compiled modes with several steps fused into one call.
EXECUTIONS = [(mode, 1) for mode in execution.MODES] + [("graph", 16), ("xla", 64)]


# The default suite keeps the fused modes (train.py's xla-K64 among them); one step per call is in the
# slow tier: graph-K1 is the reference run above, and eager == graph == XLA is test_training's.
@pytest.mark.parametrize("mode, steps_per_execution", [
    pytest.param(mode, k, marks=pytest.mark.slow) if k == 1 else (mode, k) for mode, k in EXECUTIONS])
def test_every_execution_mode_matches_keras(fashion_mnist, mode, steps_per_execution):
    """Two epochs on 6,000 images per mode; the full 5-epoch run per mode is in the slow suite."""
    assert_within_bounds(run_parity(fashion_mnist, examples=6000, epochs=2, mode=mode,
                                    steps_per_execution=steps_per_execution).summary())


@pytest.mark.slow
@pytest.mark.parametrize("mode, steps_per_execution", EXECUTIONS)
def test_every_execution_mode_passes_the_full_acceptance(fashion_mnist, mode, steps_per_execution):
    """All bounds but the epoch-1 weights one, for the ReLU-split reason above; the test loss within the
    parity issue's 2e-3 after five epochs, as the reference run's. Measured on the 2-core Intel Xeon with
    AMX: 1.29e-3 in eager, graph K=1 and K=16 alike, 1.40e-3 under XLA; after the split the runs are two
    trainings from one start, so a tighter bound would be chance (see engine/compare/parity.py)."""
    report = run_parity(fashion_mnist, epochs=5, mode=mode, steps_per_execution=steps_per_execution)
    summary = report.summary()
    assert summary["forward_max_abs_diff"] <= 1e-6 and summary["step1_gradient_max_abs_diff"] <= 1e-6
    assert summary["step_loss_max_rel_diff"] <= 1e-5 and summary["fit_step_loss_max_rel_diff"] <= 1e-5
    assert summary["final_test_accuracy_diff"] <= 0.002, summary
    assert summary["final_test_loss_diff"] <= 2e-3, summary


@pytest.mark.slow
def test_with_manual_gradients_the_engine_follows_keras_through_the_whole_first_epoch(fashion_mnist):
    """The manual rule for the output layer, (softmax(z) - onehot) / batch, rounds as Keras's fused kernel
    does on most batches (tests/test_losses.py), so no ReLU split separates the runs in epoch 1 and the
    epoch-1 weights bound the tape misses holds. Measured on the 2-core AMD EPYC, TensorFlow 2.21: 3.0e-7
    after the epoch, the test figures equal (the tape: 1.0e-3)."""
    summary = run_parity(fashion_mnist, epochs=1, mode="graph", gradients="manual").summary()
    assert_within_bounds(summary)
    assert summary["first_relu_split_step"] == 0


def slow(changes: dict):
    """A configuration whose promise another default case keeps (about 11 s each): in the slow tier."""
    return pytest.param(changes, marks=pytest.mark.slow)


# The default suite keeps one case of each kind: odd layer sizes, a partial last batch, the logits
# output with Nesterov momentum, Keras's initial weights, a batch in two shards (engine/gradients.py's `sharded`).
@pytest.mark.parametrize("changes", [
    slow(dict(hidden=())),
    slow(dict(hidden=(64,))),
    dict(hidden=(33, 17)),
    slow(dict(batch_size=48)),  # 6000 = 125 * 48: full batches; see the next case
    dict(batch_size=77),  # 6000 = 77 * 77 + 71: a partial last batch
    slow(dict(learning_rate=0.1)),
    slow(dict(learning_rate=0.001)),
    slow(dict(momentum=0.9)),
    slow(dict(momentum=0.9, nesterov=True)),
    slow(dict(output="logits")),
    dict(output="logits", momentum=0.9, nesterov=True),
    dict(weights_from="keras"),
    slow(dict(gradients="manual", momentum=0.9)),
    dict(mode="xla", steps_per_execution=64, batch_size=256, shards=2),  # train.py's default at batch 256 here
    slow(dict(batch_size=77, shards=3)),  # uneven shards of a partial last batch
], ids=lambda changes: ",".join(f"{k}={v}" for k, v in changes.items()))
def test_parity_holds_across_configurations(fashion_mnist, changes):
    setup = dict(hidden=(64, 32), epochs=1, recorded_steps=100)
    setup.update(changes)
    report = run_parity(fashion_mnist, examples=6000, **setup)
    assert_within_bounds(report.summary())
    assert len(report.fit_steps) == min(100, -(-6000 // report.setup["batch_size"]))


def test_the_printed_summary_says_in_words_that_no_relu_split_was_found():
    from engine.app.side_by_side import describe

    assert describe("first_relu_split_step", 0, 200) == "none (no ReLU split in the first 200 steps)"
    assert describe("first_relu_split_step", 253, 400).startswith("253 (the first step where a hidden unit is on")
    assert describe("forward_max_abs_diff", 5.96e-08, 200) == "5.96e-08"

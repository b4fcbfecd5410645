"""A step's batch in shards (engine/gradients.py's `sharded`): each shard's mean loss and gradients, weighed by its
share of the batch, are the whole batch's, to float32 rounding, by tape or by the backward pass
written out, in every mode, for batches that do not divide evenly and batches smaller than the
number of shards. `train.py` cuts a batch in two where `execution.shards_for` says it pays (measured
in bench/RESULTS.md), says so, and a strategy's run is never cut (its replicas share the batch)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from engine import execution, gradients, losses, optimizers
from engine.app.defaults import with_shards
from engine.app.job import announce_device
from engine.errors import ConfigError
from engine.run.config import TrainConfig
from engine.run.devices import Device
from engine.gradients import shard_sizes, sharded
from engine.training import Trainer
from layers import mlp
from tests.conftest import REPO, mnist_subset

CPU = Device("cpu", "/device:CPU:0", "CPU (2 cores)")
GPU = Device("gpu", "/device:GPU:0", "GPU 0 of 1: test")
LOSS = losses.sparse_categorical_crossentropy


@pytest.fixture(scope="module")
def digits(mnist_t10k_dir):
    """300 real MNIST digits in [0, 1] and their labels."""
    from engine.data import idx

    images = idx.read_idx(mnist_t10k_dir / "t10k-images-idx3-ubyte.gz")[:300].astype(np.float32) / 255
    return images, idx.read_idx(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz")[:300].astype(np.int32)


def model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    built = mlp((32, 16), 10)
    built.build((None, 28, 28))
    return built


@pytest.mark.parametrize("batch, shards", [(8, 2), (7, 2), (7, 3), (5, 8), (1, 2)],
                         ids=["even", "odd", "three", "more-shards-than-rows", "one-row"])
@pytest.mark.parametrize("kind", [gradients.tape_gradients, gradients.manual_gradients], ids=["tape", "manual"])
def test_the_shards_weighed_by_their_rows_give_the_whole_batchs_loss_logits_and_gradients(digits, kind, batch, shards):
    net = model()
    images, labels = tf.constant(digits[0][:batch]), tf.constant(digits[1][:batch])
    loss, logits, grads = kind(net, LOSS, images, labels)
    shard_loss, shard_logits, shard_grads = sharded(kind, shards)(net, LOSS, images, labels)
    assert np.isfinite(shard_loss.numpy())  # an empty shard's 0/0 mean is weighed out, not multiplied in
    np.testing.assert_allclose(shard_loss.numpy(), loss.numpy(), rtol=1e-6)
    np.testing.assert_allclose(shard_logits.numpy(), logits.numpy(), atol=1e-6)  # the batch's order
    for got, want in zip(shard_grads, grads):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-7)


@pytest.mark.parametrize("compile_mode", ["graph", "xla"])
def test_under_a_compiled_step_an_empty_shard_still_weighs_nothing(digits, compile_mode):
    """The shard sizes are computed in the graph from the batch's (unknown) size."""
    net = model()
    step = tf.function(lambda x, y: sharded(gradients.tape_gradients, 2)(net, LOSS, x, y),
                       jit_compile=compile_mode == "xla", reduce_retracing=True)
    for batch in (1, 6):
        loss, _, grads = step(tf.constant(digits[0][:batch]), tf.constant(digits[1][:batch]))
        want_loss, _, want_grads = gradients.tape_gradients(net, LOSS, tf.constant(digits[0][:batch]),
                                                            tf.constant(digits[1][:batch]))
        np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-6)
        assert max(np.abs(g - w).max() for g, w in zip(grads, want_grads)) < 1e-7


def test_shard_sizes_are_as_even_as_can_be_the_first_taking_the_remainder():
    assert shard_sizes(tf.constant(256), 2).numpy().tolist() == [128, 128]
    assert shard_sizes(tf.constant(7), 2).numpy().tolist() == [4, 3]
    assert shard_sizes(tf.constant(7), 3).numpy().tolist() == [3, 2, 2]
    assert shard_sizes(tf.constant(1), 2).numpy().tolist() == [1, 0]


def test_one_shard_is_the_gradients_themselves_and_fewer_is_refused():
    assert sharded(gradients.tape_gradients, 1) is gradients.tape_gradients
    with pytest.raises(ValueError, match="shards must be >= 1, got 0"):
        sharded(gradients.tape_gradients, 0)
    with pytest.raises(ValueError, match="shards must be >= 1, got -2"):
        Trainer(model(), LOSS, optimizers.SGD(0.1), shards=-2)


@pytest.mark.parametrize("mode, steps_per_execution", [("eager", 1), ("graph", 4), ("xla", 64)])
def test_a_trainer_with_two_shards_trains_as_one_to_rounding_and_repeats_itself_exactly(digits, mode,
                                                                                       steps_per_execution):
    """Three epochs at batch 64 of 300 digits (a partial last batch of 44): the weights after them
    agree with the unsharded run's to float32 rounding, and two sharded runs agree bit for bit."""
    runs = {}
    for name, shards in (("whole", 1), ("halves", 2), ("halves again", 2)):
        net = model()
        trainer = Trainer(net, LOSS, optimizers.SGD(0.1), mode, steps_per_execution, shards=shards)
        history = trainer.fit(*digits, epochs=3, batch_size=64, seed=1)
        runs[name] = ([v.numpy() for v in net.trainable_variables], history)
    for whole, halves in zip(runs["whole"][0], runs["halves"][0]):
        np.testing.assert_allclose(halves, whole, atol=2e-5)
    assert all(np.array_equal(a, b) for a, b in zip(runs["halves"][0], runs["halves again"][0]))
    for whole, halves in zip(runs["whole"][1], runs["halves"][1]):
        assert halves["accuracy"] == pytest.approx(whole["accuracy"], abs=1 / 300)
        assert halves["loss"] == pytest.approx(whole["loss"], rel=1e-4)


@pytest.mark.parametrize("batch_size, shards", [(32, 1), (224, 1), (239, 1), (240, 2), (256, 2), (288, 2), (289, 1),
                                                (1024, 1)])
def test_a_float32_xla_step_on_real_cores_is_cut_in_two_where_that_was_measured_to_pay(batch_size, shards):
    assert execution.shards_for(batch_size, "xla", "float32", cores=2, logical_cpus=2) == shards


@pytest.mark.parametrize("batch_size, shards", [(32, 1), (240, 1), (256, 2), (512, 2), (1024, 2), (1025, 1),
                                                (4096, 1)])
def test_a_bfloat16_graph_step_on_real_cores_is_cut_in_two_where_that_was_measured_to_pay(batch_size, shards):
    assert execution.shards_for(batch_size, "graph", "mixed_bfloat16", cores=2, logical_cpus=2) == shards


@pytest.mark.parametrize("mode, precision, cores, logical_cpus", [
    ("graph", "float32", 2, 2), ("eager", "float32", 2, 2), ("xla", "mixed_bfloat16", 2, 2),
    ("eager", "mixed_bfloat16", 2, 2), ("graph", "mixed_bfloat16", 1, 2),
    ("xla", "float32", 1, 2), ("xla", "float32", 1, 1), ("xla", "float32", 4, 8)],
    ids=["graph", "eager", "bfloat16-xla", "bfloat16-eager", "bfloat16-hyperthreads", "hyperthreads", "one-core",
         "hyperthreaded-cores"])
def test_other_modes_precisions_and_cpus_keep_the_batch_whole(mode, precision, cores, logical_cpus):
    assert execution.shards_for(256, mode, precision, cores, logical_cpus) == 1


def test_a_mixed_bfloat16_trainer_with_two_shards_trains_as_one_to_bfloat16_rounding(digits):
    """The default's bfloat16 case: graph mode, float32 weights, bfloat16 products; the halves' float32
    gradients summed. Two epochs at batch 64 of 300 digits."""
    weights = {}
    for shards in (1, 2):
        tf.keras.utils.set_random_seed(0)
        net = mlp((32, 16), 10, dtype="mixed_bfloat16")
        net.build((None, 28, 28))
        Trainer(net, LOSS, optimizers.SGD(0.1), "graph", 4, shards=shards).fit(*digits, epochs=2, batch_size=64, seed=1)
        weights[shards] = [v.numpy() for v in net.trainable_variables]
        assert all(v.dtype == np.float32 for v in weights[shards])
    # A bfloat16 product keeps 8 bits: summed in another order, a few weights part by a few 1e-3 (2.6e-3
    # measured on the AMD EPYC), the mean difference stays ~500x below the weights' mean size (9.5e-5).
    differences = np.concatenate([np.abs(halves - whole).ravel() for whole, halves in zip(weights[1], weights[2])])
    assert differences.max() < 2e-2 and differences.mean() < 5e-4, (differences.max(), differences.mean())


def test_the_run_cuts_the_batch_only_on_a_cpu_without_a_strategy_unless_told(monkeypatch):
    from engine.run import devices

    monkeypatch.setattr(devices, "cpu_topology", lambda: (2, 2))  # two real cores
    assert with_shards(TrainConfig(batch_size=256, mode="xla"), CPU).shards == 2
    assert with_shards(TrainConfig(batch_size=32, mode="xla"), CPU).shards == 1
    assert with_shards(TrainConfig(batch_size=256, mode="graph"), CPU).shards == 1
    assert with_shards(TrainConfig(batch_size=256, mode="xla"), GPU).shards == 1
    assert with_shards(TrainConfig(batch_size=256, mode="xla", strategy="mirrored", cpu_devices=2), CPU).shards == 1
    assert with_shards(TrainConfig(batch_size=1024, mode="xla", shards=4), CPU).shards == 4
    assert with_shards(TrainConfig(batch_size=1024, mode="graph", precision="mixed_bfloat16"), CPU).shards == 2
    monkeypatch.setattr(devices, "cpu_topology", lambda: (1, 2))  # one core's two hyperthreads
    assert with_shards(TrainConfig(batch_size=256, mode="xla"), CPU).shards == 1


def test_shards_with_a_strategy_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^--shards=2 cuts a step on one device; with --strategy or --cpu_devices"):
        TrainConfig(shards=2, strategy="mirrored", cpu_devices=2)
    TrainConfig(shards=1, strategy="mirrored", cpu_devices=2)  # one shard is the batch whole: nothing to refuse


def test_the_device_line_says_when_each_batch_is_cut():
    lines = []
    for shards in (2, 1):
        announce_device(TrainConfig(mode="xla", shards=shards), lines.append, CPU)
    assert [line.split("; mode: ")[1] for line in lines] == [
        "xla, steps per call by the step's work, each batch in 2 shards; gradients: tape",
        "xla, steps per call by the step's work; gradients: tape"]


def test_train_py_cuts_each_batch_as_shards_for_says_on_this_machine(mnist_t10k_dir, tmp_path):
    """A real run at batch 256 on real digits: the Device line says the shards this machine's cores
    call for (two on a CPU of real cores, none on hyperthreads)."""
    from engine.run.devices import cpu_topology

    (tmp_path / "data").mkdir()
    data = mnist_subset(mnist_t10k_dir, tmp_path / "data", train=600, test=64)
    shards = execution.shards_for(256, "xla", "float32", *cpu_topology())
    result = subprocess.run([sys.executable, "train.py", "--dataset=mnist", f"--data_dir={data}",
                             f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={tmp_path / 'run'}",
                             "--epochs=1", "--hidden=8", "--batch_size=256"], cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    device = next(line for line in result.stdout.splitlines() if line.startswith("Device: CPU"))
    cut = f", each batch in {shards} shards" if shards > 1 else ""
    assert f"; mode: xla, steps per call by the step's work{cut}; gradients:" in device, device


@pytest.mark.parametrize("shards, batch_size", [(17, 256), (33, 32), (100000, 256)])
def test_more_shards_than_rows_or_than_sixteen_are_refused_in_one_line(shards, batch_size):
    with pytest.raises(ConfigError, match=rf"^--shards must be at most 16 and at most --batch_size={batch_size} "
                                          rf".*got {shards}$"):
        TrainConfig(shards=shards, batch_size=batch_size)
    TrainConfig(shards=min(16, batch_size), batch_size=batch_size)


def test_shards_is_a_flag_with_a_lower_bound():
    result = subprocess.run([sys.executable, "train.py", "--shards=-1"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("train.py: error: ") and "--shards" in result.stderr


def test_every_program_resolves_mode_and_shards_through_one_function():
    """engine/app/defaults.py's `resolved` is the one place --mode=auto and --shards=0 become choices (the
    shards depend on the mode, so the order matters): a program that called `with_mode` or
    `with_shards` itself could train otherwise than train.py says it does."""
    sources = [REPO / "train.py", *sorted((REPO / "engine").rglob("*.py")), *sorted((REPO / "bench").rglob("*.py"))]
    bypassing = [str(path.relative_to(REPO)) for path in sources
                 if path.name != "defaults.py" and ("with_mode(" in path.read_text() or "with_shards(" in path.read_text())]
    assert not bypassing, f"call engine.app.defaults.resolved instead: {bypassing}"

"""Training and evaluation speed of the reference model at batch 32: the engine in each setting
against tf.keras, in one run.

    python -m pytest bench                                  # ~5 minutes on 2 cores
    python -m pytest bench -k "xla or keras-jit"            # a subset
    python -m pytest bench --benchmark-columns=median,min,max,rounds --benchmark-sort=name

Groups (one table each): `train` (64 steps a round, the compiled K-step functions themselves),
`epoch` (the public `fit` over the 60k training examples), `evaluate` (the public `evaluate` over
the 10k test examples). Warm-up rounds run first and are not timed: they trace and compile.
Every round ends on a value read back to Python, so it times the work, not its dispatch.
`extra_info` holds steps/s or examples/s and achieved GFLOP/s; `python -m bench.report` adds
the ratios to Keras and the roofline.

The `train` group also holds every installed peer (JAX/Flax, PyTorch: `bench/peers.py`, each in a
worker process of its own, from the engine's initial weights on the engine's batches); a peer that
is not installed is skipped, naming `pip install -e '.[peers]'`. `python -m bench.report --peers`
is the full comparison (every batch size, interleaved rounds, time to accuracy).
"""

import math

import pytest

from bench import peer_process, peer_worker, peers, workloads

BATCH = workloads.BATCH_SIZE
STEPS_PER_ROUND = 64  # one call of the K=64 settings, 4 of graph-K16, 64 of the K=1 settings
EAGER_EPOCH_STEPS = 256  # eager's "epoch": 256 of the 1,875 steps (a full one takes ~35 s on a CPU)
ENGINE = [s.name for s in workloads.ENGINE_SETTINGS]
KERAS = [s.name for s in workloads.KERAS_SETTINGS]
KERAS_COMPILED = [name for name in KERAS if name != "keras-eager"]  # keras-eager: the train group only
PEERS = [setting.name for setting in peers.SETTINGS if setting.framework in ("jax", "torch")]


def _rounds(name: str, compiled: int) -> int:
    return 3 if workloads.SETTINGS[name].mode == "eager" else compiled


def _median(benchmark):
    """The median seconds per round, or None under --benchmark-disable."""
    return benchmark.stats.stats.median if benchmark.stats else None


@pytest.mark.parametrize("name", ENGINE + KERAS)
def test_train_steps(benchmark, fashion, name):
    """64 training steps through the setting's compiled K-step function (see workloads.step_runner)."""
    runner = workloads.step_runner(workloads.SETTINGS[name], fashion.train_images, fashion.train_labels)
    benchmark.group = f"train: {STEPS_PER_ROUND} steps, batch {BATCH}"
    loss = benchmark.pedantic(runner, args=(STEPS_PER_ROUND // runner.steps_per_call,),
                              warmup_rounds=2, rounds=_rounds(name, 5))
    assert math.isfinite(loss)
    seconds = _median(benchmark)
    if seconds:
        rate = STEPS_PER_ROUND / seconds
        benchmark.extra_info.update(steps_per_second=round(rate, 1), samples_per_second=round(rate * BATCH),
                                    ms_per_step=round(1e3 / rate, 3),
                                    gflops=round(rate * workloads.train_flops_per_step(BATCH) / 1e9, 2))


@pytest.mark.parametrize("name", PEERS)
def test_peer_train_steps(benchmark, name):
    """64 training steps of a peer setting in its worker process. Each round sends the worker 64
    batches of indices (precomputed, a few hundred bytes) and waits for their mean loss: the pipe's
    round trip (~0.1 ms) is the only cost beyond the steps, under 1% of a round."""
    setting = next(setting for setting in peers.SETTINGS if setting.name == name)
    reason = peer_process.missing(setting.framework)
    if reason:
        pytest.skip(f"{setting.framework}: {reason}")
    worker = peer_process.Worker(setting.framework)
    try:
        worker.ask("build", setting=peers.resolved(setting, BATCH), batch_size=BATCH, weights=peers.initial_weights())
        orders = [peer_worker.epoch_order(60000, BATCH, epoch, STEPS_PER_ROUND) for epoch in range(1, 9)]
        rounds = iter(orders * 2)
        benchmark.group = f"train: {STEPS_PER_ROUND} steps, batch {BATCH}"
        loss = benchmark.pedantic(lambda: worker.ask("train_order", order=next(rounds))["loss"],
                                  warmup_rounds=2, rounds=5)
    finally:
        worker.close()
    assert math.isfinite(loss)
    seconds = _median(benchmark)
    if seconds:
        rate = STEPS_PER_ROUND / seconds
        benchmark.extra_info.update(steps_per_second=round(rate, 1), samples_per_second=round(rate * BATCH),
                                    gflops=round(rate * workloads.train_flops_per_step(BATCH) / 1e9, 2))


@pytest.mark.parametrize("name", ENGINE + KERAS_COMPILED)
def test_epoch(benchmark, fashion, name):
    """One epoch of the public `fit` (seeded shuffle, 1,875 steps); eager runs its first 256 steps."""
    setting = workloads.SETTINGS[name]
    x, y = fashion.train_images, fashion.train_labels
    if setting.mode == "eager":
        x, y = x[:EAGER_EPOCH_STEPS * BATCH], y[:EAGER_EPOCH_STEPS * BATCH]
        benchmark.group = f"epoch (eager): {len(y)} examples, batch {BATCH}"
    else:
        benchmark.group = f"epoch: {len(y)} examples, batch {BATCH}"
    if setting.side == "engine":
        trainer = workloads.engine_trainer(setting)
        loss = benchmark.pedantic(lambda: trainer.fit(x, y, epochs=1, batch_size=BATCH, seed=0)[-1]["loss"],
                                  warmup_rounds=1, rounds=_rounds(name, 3))
    else:
        model = workloads.keras_model(setting)
        loss = benchmark.pedantic(lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0).history["loss"][-1],
                                  warmup_rounds=1, rounds=3)
    assert math.isfinite(loss)
    seconds, steps = _median(benchmark), -(-len(y) // BATCH)
    if seconds:
        benchmark.extra_info.update(steps=steps, steps_per_second=round(steps / seconds, 1),
                                    samples_per_second=round(len(y) / seconds),
                                    full_epoch_seconds=round(seconds * 60000 / len(y), 2))


@pytest.mark.parametrize("name", ENGINE + KERAS_COMPILED)
def test_evaluate(benchmark, fashion, name):
    """The public `evaluate` over the 10k test examples: forward pass, loss and accuracy."""
    setting = workloads.SETTINGS[name]
    x, y = fashion.test_images, fashion.test_labels
    benchmark.group = f"evaluate: {len(y)} examples, batch {BATCH}"
    if setting.side == "engine":
        trainer = workloads.engine_trainer(setting)
        loss = benchmark.pedantic(lambda: trainer.evaluate(x, y, batch_size=BATCH)["loss"],
                                  warmup_rounds=2, rounds=_rounds(name, 5))
    else:
        model = workloads.keras_model(setting)
        loss = benchmark.pedantic(lambda: model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)["loss"],
                                  warmup_rounds=2, rounds=5)
    assert math.isfinite(loss)
    seconds = _median(benchmark)
    if seconds:
        benchmark.extra_info.update(samples_per_second=round(len(y) / seconds),
                                    gflops=round(len(y) * workloads.eval_flops_per_example() / seconds / 1e9, 2))

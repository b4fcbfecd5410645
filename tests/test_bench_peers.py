"""The peers experiment (bench/peers.py) measures one workload in every framework.

Two tiers. The default one needs no peer: the workers' data and batch order are the engine's, to
the last bit, and a framework that is not installed is named with the command that installs it.
The opt-in `peers` tier (`python -m pytest -m peers`, with `pip install -e '.[peers]'`) runs each
installed framework: from the engine's initial weights on the engine's batches, every float32
setting's first-step loss equals the engine's to float32 rounding and so do the next steps';
and `python -m bench.report --peers --quick` writes its tables and chart. Without the peers those
tests skip, saying so.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import peer_process, peer_settings, peer_worker, peers
from engine import batches
from tests.conftest import REPO

PEERS_INSTALLED = [framework for framework in ("jax", "torch") if peer_process.missing(framework) is None]
needs_a_peer = pytest.mark.skipif(not PEERS_INSTALLED, reason="no peer installed (pip install -e '.[peers]')")


def test_the_workers_read_the_same_fashion_mnist_as_the_engine(fashion_mnist_dir):
    from engine.data import loading

    engine = loading.load("fashion_mnist", log=lambda line: None)
    worker = peer_worker.fashion_mnist()
    for split in ("train", "test"):
        assert worker[f"{split}_images"].dtype == np.float32 and worker[f"{split}_labels"].dtype == np.int32
        np.testing.assert_array_equal(worker[f"{split}_images"], getattr(engine, f"{split}_images"))
        np.testing.assert_array_equal(worker[f"{split}_labels"], getattr(engine, f"{split}_labels"))


@pytest.mark.parametrize("batch_size", [32, 1000, 4096])
def test_an_epochs_order_is_the_engines_shuffle_cut_to_full_batches(batch_size):
    for epoch in (1, 2, 7):
        order = peer_worker.epoch_order(60000, batch_size, epoch)
        engine = list(batches.epoch_batches(60000, batch_size, peer_worker.SEED, epoch))
        assert order.shape == (60000 // batch_size, batch_size) and order.dtype == np.int32
        np.testing.assert_array_equal(order, np.stack(engine[:60000 // batch_size]))
    np.testing.assert_array_equal(peer_worker.epoch_order(60000, batch_size, 3, steps=5),
                                  peer_worker.epoch_order(60000, batch_size, 3)[:5])


def test_a_framework_that_is_not_installed_is_named_with_the_command_that_installs_it(monkeypatch):
    monkeypatch.setitem(peer_process.REQUIRES, "jax", ("json", "no_such_module_for_the_test"))
    assert peer_process.missing("jax") == "not installed (pip install -e '.[peers]': no no_such_module_for_the_test)"
    assert peer_process.missing("engine") is None and peer_process.missing("keras") is None


@pytest.mark.parametrize("avx512", [False, True], ids=["avx2", "avx512"])
def test_the_engines_default_setting_is_what_train_py_runs(monkeypatch, avx512):
    """The mode and K the job resolves for `train.py --batch_size=B` (--mode=auto: xla in float32, but graph
    at batch 4096 on an AVX-512 CPU; graph for bfloat16 from batch 256)."""
    from engine.run import devices
    from engine.run.config import TrainConfig
    from engine.app.defaults import with_mode, with_steps_per_call

    monkeypatch.setattr(devices, "cpu_flags", lambda names, cpuinfo=None: ["avx512f"] if avx512 else [])
    modes = {}
    for batch_size in (32, 256, 1024, 4096):
        setting = peers.resolved(peers.SETTINGS[0], batch_size)
        config = with_steps_per_call(with_mode(TrainConfig(batch_size=batch_size)), (28, 28), 10)  # as the job does
        assert (setting["mode"], setting["steps_per_execution"]) == (config.mode, config.steps_per_execution)
        assert setting["steps_per_execution"] >= 60000 // batch_size  # the whole epoch: one call
        modes[batch_size] = config.mode
    assert modes == {32: "xla", 256: "xla", 1024: "xla", 4096: "graph" if avx512 else "xla"}
    assert [with_mode(TrainConfig(batch_size=b, precision="mixed_bfloat16")).mode for b in (32, 256, 4096)] == [
        "xla", "graph", "graph"]


def test_the_cpus_flags_are_read_from_proc_cpuinfo_and_absent_where_it_is(tmp_path):
    from engine.run import devices

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f amx_tile\n\n"
                       "processor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f amx_tile\n")
    assert devices.cpu_flags(("avx512f", "avx512_bf16", "avx2"), cpuinfo) == ["avx512f", "avx2"]
    assert devices.cpu_flags(("avx512f",), tmp_path / "missing") == []  # not Linux: no flags, XLA's rule


def test_the_mode_rule_reads_the_cpus_flags_only_for_a_cpu_run(monkeypatch):
    """AVX-512 is the host CPU's: a step on a GPU keeps XLA at batch 4096; the thresholds are where they say."""
    from engine import execution
    from engine.app.defaults import with_mode
    from engine.run import devices
    from engine.run.config import TrainConfig

    assert execution.mode_for(4096, "float32", avx512=True) == "graph"
    assert execution.mode_for(4095, "float32", avx512=True) == "xla"
    assert execution.mode_for(4096, "float32", avx512=False) == "xla"
    assert execution.mode_for(256, "mixed_bfloat16") == "graph" and execution.mode_for(255, "mixed_bfloat16") == "xla"
    monkeypatch.setattr(devices, "cpu_flags", lambda names, cpuinfo=None: ["avx512f"])
    monkeypatch.setattr(devices, "select", lambda requested="auto": devices.Device("gpu", "/GPU:0", "a GPU"))
    assert with_mode(TrainConfig(batch_size=4096)).mode == "xla"
    assert with_mode(TrainConfig(batch_size=4096, mode="graph")).mode == "graph"  # an explicit mode stays


def test_the_engines_default_threads_shards_and_dots_are_what_train_py_sets_on_a_cpu_and_reach_the_worker(
        monkeypatch):
    from engine.app.defaults import dot_library_of, resolved, threads_of
    from engine.run import devices
    from engine.run.config import TrainConfig
    from engine.run.devices import Device

    cpu = Device("cpu", "/device:CPU:0", "CPU")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")  # the user's own flags stay in the worker's
    at_1024 = {"XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_cpu_experimental_ynn_fusion_type=dot"}
    for topology, at_32 in (((1, 2), {"TF_NUM_INTRAOP_THREADS": "1"}), ((2, 2), {})):  # hyperthreads; real cores
        monkeypatch.setattr(devices, "cpu_topology", lambda: topology)
        for batch_size in (32, 64, 256, 1024):
            setting = peers.resolved(peers.SETTINGS[0], batch_size)
            config, _ = resolved(TrainConfig(batch_size=batch_size))
            assert setting["threads"] == threads_of(TrainConfig(batch_size=batch_size), cpu)
            assert setting["shards"] == config.shards == (2 if batch_size == 256 and topology == (2, 2) else 1)
            assert setting["dots"] == dot_library_of(config, cpu) == ("ynnpack" if batch_size == 1024 else "xla")
            assert peers.environment_at(peers.SETTINGS[0], batch_size) == {32: at_32, 1024: at_1024}.get(batch_size, {})
    single = next(setting for setting in peers.SETTINGS if setting.framework == "jax" and setting.threads == 1)
    assert peers.environment_at(single, 1024) == {peer_worker.CPUS: "1"}  # JAX's pool follows the CPUs it may use


@pytest.mark.parametrize("told, expected", [("1", 1), ("", len(os.sched_getaffinity(0)))], ids=["one", "unset"])
def test_a_worker_told_its_number_of_cpus_keeps_to_that_many(told, expected):
    probe = ("import os; from bench import peer_worker; peer_worker.pin_cpus(os.environ.get(peer_worker.CPUS, '')); "
             "print(len(os.sched_getaffinity(0)))")
    env = {**os.environ, "PYTHONPATH": str(REPO), peer_worker.CPUS: told}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and int(run.stdout) == expected, run.stderr


def test_a_setting_that_kept_more_cores_busy_than_its_threads_is_named():
    # Measured on the 2-core AMD EPYC: JAX under the usual XLA_FLAGS "one thread" kept 1.94 cores busy.
    rows = [{**_row("flax-scan-K64-1t", "jax", "scan", 64, 120, 513.8, threads=1), "cores_busy": 1.94},
            {**_row("engine-xla-K64-1t", "engine", "xla", 64, 120, 334.5, threads=1), "cores_busy": 1.00},
            {**_row("torch-eager-2t", "torch", "eager", 1, 120, 250.9, threads=2), "cores_busy": 1.98},
            {**_row("engine-default", "engine", "xla", 64, 120, 508.0), "cores_busy": 1.75},  # its framework's choice
            dict(_row("torch-eager-1t", "torch", "eager", 1, 120, 0.0, threads=1), error="boom")]
    assert [row["setting"] for row in peers.threads_not_held(rows)] == ["flax-scan-K64-1t"]
    assert "flax-scan-K64-1t asked for 1 thread(s) per op and kept 1.94 cores busy" in peers.threads_line(rows[0])


@pytest.mark.peers
@needs_a_peer
def test_every_setting_starts_from_the_engines_loss_and_stays_with_it():
    """The same weights and batches: the loss of step 1 agrees to float32 rounding (~2.4e-7 at 2.3),
    the mean of steps 2-8 (after updates) within 1e-5; bfloat16 steps within bfloat16's rounding."""
    settings = peers.SETTINGS + peers.BFLOAT16_SETTINGS
    workers, skipped = peers.start(settings)
    try:
        assert not [name for name, why in skipped.items() if "not installed" not in why], skipped
        rows = {row["setting"]: row for row in peers.parity(workers, settings, peers.initial_weights())}
    finally:
        peers.close(workers)
    assert set(rows) == set(workers)
    for name, row in rows.items():
        first, rest = (1e-5, 1e-5) if row["precision"] == "float32" else (1e-3, 3e-3)
        assert row["first_loss_difference"] < first and row["next_loss_difference"] < rest, row
        assert 2.0 < row["first_loss"] < 2.6, row  # ln 10 = 2.30: an untrained 10-class softmax


@pytest.mark.peers
@needs_a_peer
def test_the_quick_peers_report_measures_every_installed_setting_and_writes_json_md_png(fashion_mnist_dir,
                                                                                       tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench.report", "--peers", "--quick"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=1500, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = {path.suffix: path for path in (tmp_path / "runs" / "bench_quick").iterdir()
               if path.stem == "peers"}
    assert set(written) == {".json", ".md", ".png"}
    report = json.loads(written[".json"].read_text())
    result, json_roofline = report["peers"], report["roofline"]["gflops"]
    installed = {setting["name"] for setting in result["settings"]} - set(result["skipped"])
    assert all("not installed" in why for why in result["skipped"].values()), result["skipped"]
    for framework in ("engine", "keras", *PEERS_INSTALLED):
        assert any(setting["framework"] == framework for setting in result["settings"]
                   if setting["name"] in installed), framework

    table = {(row["setting"], row["batch_size"]): row for row in result["throughput"]}
    assert set(table) == {(name, batch) for name in installed for batch in peer_settings.QUICK.batch_sizes}
    for key, row in table.items():
        assert "error" not in row, (key, row.get("error"))
        assert row["steps_per_second"] > 0 and row["min"] <= row["steps_per_second"] <= row["max"], key
        assert len(row["rates"]) == peer_settings.QUICK.rounds, key
        # No upper bound: a roofline measured under load can be beaten later (tests/test_bench_report.py).
        assert row["roofline_fraction"] == pytest.approx(row["gflops"] / json_roofline) and row["gflops"] > 0, key
        assert row["vs_best_peer"] > 0 and np.isfinite(row["loss"]) and 0 <= row["accuracy"] <= 1, key
        assert 0.5 < row["cores_busy"] <= len(os.sched_getaffinity(0)) + peers.BUSY_SLACK, key
    assert peers.threads_not_held(result["throughput"]) == []  # every setting's threads held, JAX's one CPU too
    for batch in peer_settings.QUICK.batch_sizes:
        best = max(row["vs_best_peer"] for (name, size), row in table.items() if size == batch
                   and row["framework"] != "engine" and row["precision"] == "float32")
        assert best == 1.0, batch

    assert {row["framework"] for row in result["time_to_accuracy"]} == {"engine", "keras", *PEERS_INSTALLED}
    for row in result["time_to_accuracy"]:
        assert not row["error"] and row["epochs_run"] >= 1, row
        assert 0.6 < row["epochs"][-1]["test_accuracy"] < 1 and row["epochs"][-1]["seconds"] > 0, row

    page = written[".md"].read_text()
    for needle in (*installed, "python -m bench.report --peers --quick", "Same workload", "Time to accuracy", "cores busy",
                   *(f"## Batch {batch}" for batch in peer_settings.QUICK.batch_sizes), written[".png"].name):
        assert needle in page, needle
    # At batch 1024 (8 steps an epoch) Flax's K=64 scan is its whole-epoch scan: the page names the pair and its
    # spread. The engine's default hands its dots to YNNPACK there, so it is not its xla K=64 setting's program.
    if "jax" in PEERS_INSTALLED:
        assert "Same program: `flax-scan-K64` and `flax-scan-epoch` ran" in page
    assert "Same program: `engine-default` and `engine-xla-K64`" not in page
    assert written[".png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[".png"].stat().st_size > 20_000


def _row(setting, framework, mode, k, steps, rate, threads=0, precision="float32", shards=1, dots="xla"):
    return {"setting": setting, "framework": framework, "mode": mode, "steps_per_execution": k, "steps": steps,
            "threads": threads, "precision": precision, "shards": shards, "dots": dots, "steps_per_second": rate}


def test_settings_that_run_the_same_program_are_grouped_and_their_spread_is_the_runs_noise():
    # Batch 1024: 30 steps an epoch, so a 64-step call is one 30-step call, as JAX's whole-epoch scan is.
    rows = [_row("engine-default", "engine", "xla", 64, 30, 177.7), _row("engine-xla-K64", "engine", "xla", 64, 30, 181.5),
            _row("engine-graph-K64", "engine", "graph", 64, 30, 181.3),
            _row("flax-scan-K64", "jax", "scan", 64, 30, 183.6), _row("flax-scan-epoch", "jax", "epoch", 1, 30, 186.9),
            _row("flax-scan-K64-1t", "jax", "scan", 64, 30, 190.0, threads=1),
            _row("engine-xla-K64-bf16", "engine", "xla", 64, 30, 180.0, precision="bfloat16"),
            dict(_row("torch-eager-1t", "torch", "eager", 1, 30, 0.0), error="boom"),
            dict(_row("torch-eager-1t-again", "torch", "eager", 1, 30, 0.0), error="boom")]
    groups = peers.same_programs(rows)
    assert [group["settings"] for group in groups] == [["engine-default", "engine-xla-K64"],
                                                       ["flax-scan-K64", "flax-scan-epoch"]]
    assert groups[0]["spread"] == pytest.approx(181.5 / 177.7 - 1)
    assert "2.1% apart" in peers.noise_line(groups[0])


def test_a_k_step_call_shorter_than_the_epoch_is_not_the_whole_epochs_program():
    # Batch 256: 120 steps an epoch, run as calls of 64 and 56 steps against one of 120.
    rows = [_row("flax-scan-K64", "jax", "scan", 64, 120, 680.6), _row("flax-scan-epoch", "jax", "epoch", 1, 120, 682.6)]
    assert peers.same_programs(rows) == []


def test_a_step_whose_dots_go_to_ynnpack_is_not_the_program_of_xlas_own_dots():
    # Batch 1024, xla K=64 both: the engine's default hands its dots to YNNPACK (engine/run/xla_flags.py).
    rows = [_row("engine-default", "engine", "xla", 64, 30, 184.7, dots="ynnpack"),
            _row("engine-xla-K64", "engine", "xla", 64, 30, 162.9)]
    assert peers.same_programs(rows) == []


def test_a_step_in_two_shards_is_not_the_whole_batchs_program():
    # Batch 256, xla K=64 both, one of them cutting each batch in two (engine/gradients.py's sharded).
    rows = [_row("engine-xla-K64", "engine", "xla", 64, 120, 484.9),
            _row("engine-xla-K64-2shards", "engine", "xla", 64, 120, 536.6, shards=2)]
    assert peers.same_programs(rows) == []

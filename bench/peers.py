"""The experiment: is the engine ahead of the frameworks a user would pick instead, at every batch size?

    python -m bench.report --peers [--quick]      # runs `run` below; the tables, JSON and chart

The workload is the same everywhere, so that only the framework differs:
- model: Flatten -> Dense(256, relu) -> Dense(128, relu) -> Dense(10, softmax), Glorot-uniform
  kernels and zero biases drawn once by the engine's initializers (`initial_weights`) and copied
  into every framework;
- data: Fashion-MNIST in memory (60k float32 images in [0, 1]); every framework trains on the same
  batches in the same order (`peer_worker.epoch_order`: the engine's per-epoch permutation), each
  step gathering its batch by index from the data in memory;
- SGD, learning rate 0.01, softmax cross-entropy; the epoch's mean loss and accuracy tracked.
`parity` checks it: every setting's first-step loss from those weights on that batch must match
the engine's to float32 rounding, and so must the next steps'.

Method. Each setting (`SETTINGS`) runs in a process of its own (bench/peer_worker.py), kept for
the whole run, with one model per batch size. At each batch size every setting first trains one
untimed warm-up epoch (tracing, compiling), then `rounds` timed epochs, in interleaved rounds:
round r times every setting once, in an order rotated by r, so the machine's drift falls on all
alike. Reported per setting: the median steps/s over the rounds and its range, samples/s, the
ratio to the best peer's (the best setting of any other framework, float32), and the fraction of
the machine's float32 matmul roofline (`bench.measure.roofline`, measured by the report at its
start) that the step's FLOPs reach (`workloads.train_flops_per_step`, ~6·B·Σ in·out).

The workers wait for their turn blocked on a pipe: measured with /proc/PID/stat while another
worker trained, the waiting ones (engine, JAX, PyTorch, Keras) used 0.00-0.01 s of CPU, so each
setting has the cores to itself (what the machine's other processes leave it).

Time to accuracy (`time_to_accuracy`): each framework's fastest float32 setting at batch 32, in a
fresh process, trained from the same weights for up to `tta_epochs` epochs; the seconds of
training (building the model and step, compiling and every epoch, evaluation and data loading
excluded) until the test accuracy, evaluated after every epoch, first reaches 0.85 and 0.88.

A framework that is not installed is reported as such and skipped; one that fails, in one line.
"""

import dataclasses
from typing import Callable, Dict, List, Sequence

import numpy as np

from bench import workloads
from bench.peer_process import PeerFailed, Worker, close, start
from bench.peer_settings import (BFLOAT16_SETTINGS, SETTINGS, THRESHOLDS, Budget,
                                 PeerSetting, bfloat16_flags, environment_at, initial_weights, resolved)
from bench.peer_worker import epoch_order
from bench.peers_accuracy import time_to_accuracy


def epoch_steps(budget: Budget, batch_size: int) -> int:
    return (budget.examples or 60000) // batch_size


def with_environment(workers: Dict[str, Worker], setting: PeerSetting, batch_size: int) -> Worker:
    """`setting`'s worker, replaced by a fresh process if it started with another environment than
    this batch size needs: a thread pool fixed at start-up cannot change in a running process."""
    worker, wanted = workers[setting.name], environment_at(setting, batch_size)
    if worker.environment != wanted:
        worker.close()
        worker = workers[setting.name] = Worker(setting.framework, wanted)
        worker.ready()
    return worker


def parity(workers: Dict[str, Worker], settings: Sequence[PeerSetting], weights: list, steps: int = 8,
           batch_size: int = 32) -> List[dict]:
    """Every setting's loss on the first batch of epoch 1 from `weights`, and the mean over the next
    steps - 1 batches, beside the engine's default: the proof that all run the same workload.
    Leaves each worker with a fresh model at `batch_size`."""
    order = epoch_order(60000, batch_size, 1, steps)
    rows = []
    for setting in settings:
        if setting.name not in workers:
            continue
        worker = with_environment(workers, setting, batch_size)
        worker.ask("build", setting=resolved(setting, batch_size), batch_size=batch_size, weights=weights)
        first = worker.ask("train_order", order=order[:1])
        rest = worker.ask("train_order", order=order[1:])
        worker.ask("build", setting=resolved(setting, batch_size), batch_size=batch_size, weights=weights)
        rows.append({"setting": setting.name, "precision": setting.precision, "first_loss": first["loss"],
                     "next_loss": rest["loss"], "first_accuracy": first["accuracy"], "next_accuracy": rest["accuracy"]})
    reference = next((row for row in rows if row["setting"] == "engine-default"), rows[0] if rows else None)
    for row in rows:
        row["first_loss_difference"] = abs(row["first_loss"] - reference["first_loss"])
        row["next_loss_difference"] = abs(row["next_loss"] - reference["next_loss"])
    return rows


def throughput(workers: Dict[str, Worker], settings: Sequence[PeerSetting], batch_size: int, budget: Budget,
               weights: list, roofline: float, say: Callable[[str], None], built: bool = False) -> List[dict]:
    """One batch size: a fresh model and a warm-up epoch per setting, then `budget.rounds` interleaved
    timed epochs. Rows in `settings`' order; a setting that fails has its one-line `error`."""
    steps, errors = epoch_steps(budget, batch_size), {}
    live = [setting for setting in settings if setting.name in workers]
    for setting in live:
        try:
            if not built or workers[setting.name].environment != environment_at(setting, batch_size):
                with_environment(workers, setting, batch_size).ask("build", setting=resolved(setting, batch_size), batch_size=batch_size,
                                          weights=weights)
            workers[setting.name].ask("train", epoch=1, steps=steps)  # warm-up: traces and compiles
        except PeerFailed as failure:
            errors[setting.name] = str(failure).splitlines()[-1]
    rates: Dict[str, list] = {setting.name: [] for setting in live}
    busy: Dict[str, list] = {setting.name: [] for setting in live}
    last: Dict[str, dict] = {}
    for round_ in range(budget.rounds):
        running = [setting for setting in live if setting.name not in errors]
        shift = round_ % max(1, len(running))
        for setting in running[shift:] + running[:shift]:
            try:
                answer = workers[setting.name].ask("train", epoch=2 + round_, steps=steps)
            except PeerFailed as failure:
                errors[setting.name] = str(failure).splitlines()[-1]
                continue
            rates[setting.name].append(answer["steps"] / answer["seconds"])
            busy[setting.name].append(answer["cpu_seconds"] / answer["seconds"])
            last[setting.name] = answer
    flops = workloads.train_flops_per_step(batch_size)
    rows = []
    for setting in live:
        row = {"setting": setting.name, "framework": setting.framework, "label": setting.label,
               "precision": setting.precision, "batch_size": batch_size, "steps": steps,
               "mode": resolved(setting, batch_size)["mode"],
               "steps_per_execution": resolved(setting, batch_size)["steps_per_execution"],
               "threads": resolved(setting, batch_size)["threads"], "shards": resolved(setting, batch_size)["shards"],
               "dots": resolved(setting, batch_size)["dots"]}
        if setting.name in errors:
            row["error"] = errors[setting.name]
        else:
            rate = float(np.median(rates[setting.name]))
            row.update(steps_per_second=rate, min=min(rates[setting.name]), max=max(rates[setting.name]),
                       rates=rates[setting.name], samples_per_second=rate * batch_size, gflops=rate * flops / 1e9,
                       roofline_fraction=rate * flops / 1e9 / roofline, loss=last[setting.name]["loss"],
                       accuracy=last[setting.name]["accuracy"], cores_busy=float(np.median(busy[setting.name])))
        rows.append(row)
    peers = [row for row in rows if row["framework"] != "engine" and row["precision"] == "float32" and "error" not in row]
    best = max(peers, key=lambda row: row["steps_per_second"], default=None)
    for row in rows:
        if best and "error" not in row:
            row["best_peer"], row["vs_best_peer"] = best["setting"], row["steps_per_second"] / best["steps_per_second"]
        say(line(row))
    for group in same_programs(rows):
        say(noise_line(group))
    for row in threads_not_held(rows):
        say(threads_line(row))
    return rows


# A process on N threads keeps up to N cores busy, plus what its Python thread and the framework's
# housekeeping add: one-thread workers of the engine, JAX (pinned) and PyTorch measured 1.00 on the
# 2-core AMD EPYC; JAX under the XLA_FLAGS said to make it single-threaded, 1.94.
BUSY_SLACK = 0.25


def threads_not_held(rows: Sequence[dict]) -> List[dict]:
    """The measured rows whose setting asked for a number of threads per op yet kept more cores
    busy (CPU seconds over wall seconds of the timed epochs, median of the rounds) than that: a
    framework that ignored the way it was told, so the row does not measure what its name says."""
    return [row for row in rows
            if "error" not in row and row["threads"] and row["cores_busy"] > row["threads"] + BUSY_SLACK]


def threads_line(row: dict) -> str:
    return (f"  {row['setting']} asked for {row['threads']} thread(s) per op and kept {row['cores_busy']:.2f} "
            "cores busy: its thread setting did not hold, so its row measures more threads than its name says")


def program(row: dict) -> tuple:
    """What a throughput row's setting runs at its batch size, as a key: two settings with the same
    key run the same compiled program per epoch, whatever their names. K steps per call cover at
    most the epoch's steps, so at batch 1024 (30 steps an epoch) a K=64 call and JAX's whole-epoch
    scan are one 30-step call alike, and the engine's default is the named setting it resolves to."""
    mode, k = row["mode"], row["steps_per_execution"]
    if row["framework"] == "jax" and mode == "epoch":
        mode, k = "scan", row["steps"]
    return (row["framework"], mode, min(k, row["steps"]), row["threads"], row["precision"], row.get("shards", 1),
            row.get("dots", "xla"))


def same_programs(rows: Sequence[dict]) -> List[dict]:
    """The groups of measured rows that run the same program (`program`): their spread is this run's
    noise between processes, the size of difference the table cannot tell from none. Each group:
    its settings, their steps/s and the spread, max / min - 1."""
    groups: Dict[tuple, List[dict]] = {}
    for row in rows:
        if "error" not in row:
            groups.setdefault(program(row), []).append(row)
    return [{"settings": [row["setting"] for row in group],
             "steps_per_second": [row["steps_per_second"] for row in group],
             "spread": max(row["steps_per_second"] for row in group) / min(row["steps_per_second"] for row in group) - 1}
            for group in groups.values() if len(group) > 1]


def noise_line(group: dict) -> str:
    """One group of `same_programs` as the report prints it."""
    rates = " and ".join(f"{rate:.1f}" for rate in group["steps_per_second"])
    return (f"  same program: {' and '.join(group['settings'])} ran {rates} steps/s, {group['spread']:.1%} apart "
            "(this run's noise between processes)")


def line(row: dict) -> str:
    """One setting's result as the report prints it."""
    if "error" in row:
        return f"  {row['setting']:<24} failed: {row['error']}"
    ratio = f"x{row['vs_best_peer']:.2f} best peer" if "vs_best_peer" in row else "no peer"
    return (f"  {row['setting']:<24} {row['steps_per_second']:8.1f} steps/s ({row['min']:.0f}-{row['max']:.0f})  "
            f"{row['samples_per_second']:9.0f} samples/s  {ratio}  {row['roofline_fraction']:.1%} of roofline  "
            f"{row['cores_busy']:.2f} cores busy")


def run(budget: Budget, roofline: float, say: Callable[[str], None], only: Sequence[str] = ()) -> dict:
    """The whole experiment: parity, a throughput table per batch size, time to accuracy (each
    framework's fastest at batch 32, if measured; none with `budget.tta_epochs` 0); `only` names
    the settings to run (all by default)."""
    bf16 = bfloat16_flags()
    settings = [setting for setting in SETTINGS + (BFLOAT16_SETTINGS if bf16 else ()) if not only or setting.name in only]
    weights = initial_weights()
    say(f"peers: starting {len(settings)} worker processes")
    workers, skipped = start(settings, environment_of=lambda setting: environment_at(setting, 32))
    for name, reason in skipped.items():
        say(f"  {name:<24} {reason}")
    versions = {}
    for name, worker in workers.items():
        versions.update(worker.versions)
    try:
        say("same workload: first-step loss and the next 7 steps' mean loss at batch 32, from the same weights:")
        same = parity(workers, settings, weights)
        for row in same:
            say(f"  {row['setting']:<24} {row['first_loss']:.7f} (diff {row['first_loss_difference']:.1e})  "
                f"{row['next_loss']:.7f} (diff {row['next_loss_difference']:.1e})")
        tables = {}
        for batch_size in budget.batch_sizes:
            say(f"batch {batch_size}: {epoch_steps(budget, batch_size)} steps per epoch, warm-up epoch + "
                f"{budget.rounds} interleaved rounds")
            tables[batch_size] = throughput(workers, settings, batch_size, budget, weights, roofline, say,
                                            built=batch_size == 32)
    finally:
        close(workers)
    fastest = []
    for framework in ("engine", "jax", "torch", "keras"):
        rows = [row for row in tables.get(32, []) if row["framework"] == framework
                and row["precision"] == "float32" and "error" not in row]
        if rows:
            best = max(rows, key=lambda row: row["steps_per_second"])["setting"]
            fastest.append(next(setting for setting in settings if setting.name == best))
    reached = []
    if budget.tta_epochs and fastest:
        say(f"time to accuracy at batch 32 (fresh processes, up to {budget.tta_epochs} epochs):")
        reached = time_to_accuracy(fastest, weights, budget.tta_epochs, say)
    return {"settings": [dataclasses.asdict(setting) for setting in settings], "skipped": skipped,
            "versions": versions, "bfloat16_flags": bf16, "budget": dataclasses.asdict(budget),
            "parity": same, "throughput": [row for rows in tables.values() for row in rows],
            "time_to_accuracy": reached, "thresholds": list(THRESHOLDS)}

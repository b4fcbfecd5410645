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
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from bench import workloads
from bench.peer_process import PeerFailed, Worker, missing
from engine.run.config import TrainConfig

THRESHOLDS = (0.85, 0.88)


@dataclasses.dataclass(frozen=True)
class PeerSetting:
    """One way to run the workload: `framework`'s `mode` with K steps per call, `threads` (torch)."""

    name: str
    framework: str  # engine, keras, jax, torch
    mode: str
    steps_per_execution: int = 1
    threads: int = 0
    precision: str = "float32"
    label: str = ""


K = workloads.FUSED_K
SETTINGS = (
    PeerSetting("engine-default", "engine", "default", label="scratchflow CLI default (train.py --batch_size=B)"),
    PeerSetting(f"engine-graph-K{K}", "engine", "graph", K, label=f"scratchflow graph, K={K}"),
    PeerSetting(f"engine-xla-K{K}", "engine", "xla", K, label=f"scratchflow xla, K={K}"),
    PeerSetting("flax-jit-step", "jax", "step", label="JAX/Flax jit per step"),
    PeerSetting(f"flax-scan-K{K}", "jax", "scan", K, label=f"JAX/Flax jit + lax.scan, K={K}"),
    PeerSetting("flax-scan-epoch", "jax", "epoch", label="JAX/Flax jit + lax.scan, whole epoch"),
    *(PeerSetting(f"torch-{mode}-{threads}t", "torch", mode, threads=threads,
                  label=f"PyTorch {'eager' if mode == 'eager' else 'torch.compile'}, {threads} thread(s)")
      for mode in ("eager", "compile") for threads in (1, 2)),
    PeerSetting("keras-fit", "keras", "default", label="Keras fit, compile() defaults"),
    PeerSetting(f"keras-jit-spe{K}", "keras", "jit-spe", K, label=f"Keras fit, jit_compile + steps_per_execution={K}"),
)
# Measured beside float32 where the CPU computes bfloat16 natively (`bfloat16_flags`).
BFLOAT16_SETTINGS = (
    PeerSetting(f"engine-graph-K{K}-bf16", "engine", "graph", K, precision="bfloat16",
                label=f"scratchflow graph, K={K}, bfloat16 matmuls"),
    PeerSetting(f"engine-xla-K{K}-bf16", "engine", "xla", K, precision="bfloat16",
                label=f"scratchflow xla, K={K}, bfloat16 matmuls"),
    PeerSetting("torch-eager-2t-bf16", "torch", "eager", threads=2, precision="bfloat16",
                label="PyTorch eager, 2 threads, torch.autocast bfloat16"),
)


@dataclasses.dataclass(frozen=True)
class Budget:
    batch_sizes: tuple
    examples: int  # examples per timed epoch: 0 for the whole training set
    rounds: int
    tta_epochs: int  # the cap of the time-to-accuracy runs


FULL = Budget((32, 256, 1024, 4096), 0, 5, 30)
QUICK = Budget((32, 1024), 8192, 2, 2)


def engine_default(batch_size: int) -> tuple:
    """(mode, K) that `python train.py --batch_size=B` runs with: TrainConfig's defaults."""
    config = TrainConfig(batch_size=batch_size)
    return config.mode, config.steps_per_execution


def resolved(setting: PeerSetting, batch_size: int) -> dict:
    """The setting as its worker gets it, the engine's default resolved for this batch size."""
    fields = dataclasses.asdict(setting)
    if setting.mode == "default" and setting.framework == "engine":
        fields["mode"], fields["steps_per_execution"] = engine_default(batch_size)
    return fields


def bfloat16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> List[str]:
    """The CPU's bfloat16 instructions among amx_bf16, avx512_bf16 (empty: none, or not Linux)."""
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])) if cpuinfo.exists() else set()
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags]


def initial_weights(seed: int = 0) -> list:
    """[(kernel, bias)] per Dense layer of the engine's reference model, as NumPy: every framework's start."""
    model = workloads.engine_trainer(workloads.SETTINGS[f"xla-K{K}"], seed).model
    variables = [variable.numpy() for variable in model.trainable_variables]
    return list(zip(variables[0::2], variables[1::2]))


def start(settings: Sequence[PeerSetting], environment: Optional[dict] = None) -> tuple:
    """A worker per setting whose framework is installed, all starting at once; ({name: Worker}, {name: why not})."""
    workers, skipped = {}, {}
    for setting in settings:
        reason = missing(setting.framework)
        if reason:
            skipped[setting.name] = reason
        else:
            workers[setting.name] = Worker(setting.framework, environment)
    for name in list(workers):
        try:
            workers[name].ready()
        except PeerFailed as failure:
            skipped[name] = f"failed to start: {failure}"
            workers.pop(name).close()
    return workers, skipped


def close(workers: Dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.close()


def epoch_steps(budget: Budget, batch_size: int) -> int:
    return (budget.examples or 60000) // batch_size


def parity(workers: Dict[str, Worker], settings: Sequence[PeerSetting], weights: list, steps: int = 8,
           batch_size: int = 32) -> List[dict]:
    """Every setting's loss on the first batch of epoch 1 from `weights`, and the mean over the next
    steps - 1 batches, beside the engine's default: the proof that all run the same workload.
    Leaves each worker with a fresh model at `batch_size`."""
    from bench.peer_worker import epoch_order

    order = epoch_order(60000, batch_size, 1, steps)
    rows = []
    for setting in settings:
        if setting.name not in workers:
            continue
        worker = workers[setting.name]
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
            if not built:
                workers[setting.name].ask("build", setting=resolved(setting, batch_size), batch_size=batch_size,
                                          weights=weights)
            workers[setting.name].ask("train", epoch=1, steps=steps)  # warm-up: traces and compiles
        except PeerFailed as failure:
            errors[setting.name] = str(failure).splitlines()[-1]
    rates: Dict[str, list] = {setting.name: [] for setting in live}
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
            last[setting.name] = answer
    flops = workloads.train_flops_per_step(batch_size)
    rows = []
    for setting in live:
        row = {"setting": setting.name, "framework": setting.framework, "label": setting.label,
               "precision": setting.precision, "batch_size": batch_size, "steps": steps,
               "mode": resolved(setting, batch_size)["mode"],
               "steps_per_execution": resolved(setting, batch_size)["steps_per_execution"]}
        if setting.name in errors:
            row["error"] = errors[setting.name]
        else:
            rate = float(np.median(rates[setting.name]))
            row.update(steps_per_second=rate, min=min(rates[setting.name]), max=max(rates[setting.name]),
                       rates=rates[setting.name], samples_per_second=rate * batch_size, gflops=rate * flops / 1e9,
                       roofline_fraction=rate * flops / 1e9 / roofline, loss=last[setting.name]["loss"],
                       accuracy=last[setting.name]["accuracy"])
        rows.append(row)
    peers = [row for row in rows if row["framework"] != "engine" and row["precision"] == "float32" and "error" not in row]
    best = max(peers, key=lambda row: row["steps_per_second"], default=None)
    for row in rows:
        if best and "error" not in row:
            row["best_peer"], row["vs_best_peer"] = best["setting"], row["steps_per_second"] / best["steps_per_second"]
        say(line(row))
    return rows


def line(row: dict) -> str:
    """One setting's result as the report prints it."""
    if "error" in row:
        return f"  {row['setting']:<24} failed: {row['error']}"
    ratio = f"x{row['vs_best_peer']:.2f} best peer" if "vs_best_peer" in row else "no peer"
    return (f"  {row['setting']:<24} {row['steps_per_second']:8.1f} steps/s ({row['min']:.0f}-{row['max']:.0f})  "
            f"{row['samples_per_second']:9.0f} samples/s  {ratio}  {row['roofline_fraction']:.1%} of roofline")


def time_to_accuracy(settings: Sequence[PeerSetting], weights: list, epochs: int,
                     say: Callable[[str], None]) -> List[dict]:
    """Each of `settings` (one per framework) trained from `weights` at batch 32 in a fresh process
    (torch's compile cache off), an epoch each in turn, evaluated after each (module docstring)."""
    workers, skipped = start(settings, {"TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"})
    rows = {setting.name: {"setting": setting.name, "framework": setting.framework, "epochs": [],
                           "reached": {}, "error": skipped.get(setting.name)} for setting in settings}
    clock = {}
    for setting in settings:
        if setting.name in workers:
            try:
                clock[setting.name] = workers[setting.name].ask("build", setting=resolved(setting, 32), batch_size=32,
                                                                weights=weights)["seconds"]
            except PeerFailed as failure:
                rows[setting.name]["error"] = str(failure).splitlines()[-1]
    for epoch in range(1, epochs + 1):
        for name in [name for name in clock if len(rows[name]["reached"]) < len(THRESHOLDS)]:
            try:
                trained = workers[name].ask("train", epoch=epoch, steps=0)
                accuracy = workers[name].ask("evaluate")["accuracy"]
            except PeerFailed as failure:
                rows[name]["error"] = str(failure).splitlines()[-1]
                del clock[name]
                continue
            clock[name] += trained["seconds"]
            rows[name]["epochs"].append({"epoch": epoch, "seconds": clock[name], "test_accuracy": accuracy})
            for threshold in THRESHOLDS:
                if accuracy >= threshold and str(threshold) not in rows[name]["reached"]:
                    rows[name]["reached"][str(threshold)] = {"epoch": epoch, "seconds": clock[name]}
    close(workers)
    for row in rows.values():
        row["epochs_run"] = len(row["epochs"])
        reached = ", ".join(f"{threshold} after {row['reached'][str(threshold)]['seconds']:.1f} s "
                            f"(epoch {row['reached'][str(threshold)]['epoch']})" if str(threshold) in row["reached"]
                            else f"{threshold} not reached in {row['epochs_run']} epochs" for threshold in THRESHOLDS)
        say(f"  {row['setting']:<24} " + (f"failed: {row['error']}" if row["error"] else reached))
    return list(rows.values())


def run(budget: Budget, roofline: float, say: Callable[[str], None]) -> dict:
    """The whole experiment: parity, a throughput table per batch size, time to accuracy."""
    bf16 = bfloat16_flags()
    settings = SETTINGS + (BFLOAT16_SETTINGS if bf16 else ())
    weights = initial_weights()
    say(f"peers: starting {len(settings)} worker processes")
    workers, skipped = start(settings)
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
    say(f"time to accuracy at batch 32 (fresh processes, up to {budget.tta_epochs} epochs):")
    reached = time_to_accuracy(fastest, weights, budget.tta_epochs, say)
    return {"settings": [dataclasses.asdict(setting) for setting in settings], "skipped": skipped,
            "versions": versions, "bfloat16_flags": bf16, "budget": dataclasses.asdict(budget),
            "parity": same, "throughput": [row for rows in tables.values() for row in rows],
            "time_to_accuracy": reached, "thresholds": list(THRESHOLDS)}

"""What the peers experiment (bench/peers.py) runs: its settings, budgets and starting weights."""

import dataclasses
import os
import platform
from pathlib import Path
from typing import List

from bench import workloads
from engine.run import xla_flags
from engine.run.config import TrainConfig
from engine.run.devices import cpu_flags

THRESHOLDS = (0.85, 0.88)


@dataclasses.dataclass(frozen=True)
class PeerSetting:
    """One way to run the workload: `framework`'s `mode` with K steps per call, `threads` per op
    (0: the framework's default; `environment` says how each framework is told)."""

    name: str
    framework: str  # engine, keras, jax, torch
    mode: str
    steps_per_execution: int = 1
    threads: int = 0
    precision: str = "float32"
    shards: int = 1  # the engine's row blocks per step (engine/gradients.py's `sharded`)
    label: str = ""
    dots: str = "xla"  # the library the engine's XLA hands its dots to (engine/run/xla_flags.py)


K = workloads.FUSED_K
SETTINGS = (
    PeerSetting("engine-default", "engine", "default", label="scratchflow CLI default (train.py --batch_size=B)"),
    PeerSetting(f"engine-graph-K{K}", "engine", "graph", K, label=f"scratchflow graph, K={K}"),
    PeerSetting(f"engine-xla-K{K}", "engine", "xla", K, label=f"scratchflow xla, K={K}"),
    PeerSetting(f"engine-xla-K{K}-1t", "engine", "xla", K, threads=1, label=f"scratchflow xla, K={K}, 1 thread"),
    PeerSetting(f"engine-xla-K{K}-2shards", "engine", "xla", K, shards=2,
                label=f"scratchflow xla, K={K}, 2 shards a step"),
    PeerSetting("flax-jit-step", "jax", "step", label="JAX/Flax jit per step"),
    PeerSetting(f"flax-scan-K{K}", "jax", "scan", K, label=f"JAX/Flax jit + lax.scan, K={K}"),
    PeerSetting(f"flax-scan-K{K}-1t", "jax", "scan", K, threads=1, label=f"JAX/Flax jit + lax.scan, K={K}, pinned to 1 CPU"),
    PeerSetting("flax-scan-epoch", "jax", "epoch", label="JAX/Flax jit + lax.scan, whole epoch"),
    *(PeerSetting(f"torch-{mode}-{threads}t", "torch", mode, threads=threads,
                  label=f"PyTorch {'eager' if mode == 'eager' else 'torch.compile'}, {threads} thread(s)")
      for mode in ("eager", "compile") for threads in (1, 2)),
    PeerSetting("keras-fit", "keras", "default", label="Keras fit, compile() defaults"),
    PeerSetting(f"keras-jit-spe{K}", "keras", "jit-spe", K, label=f"Keras fit, jit_compile + steps_per_execution={K}"),
)
# Measured beside float32 where the CPU computes bfloat16 natively (`bfloat16_flags`).
BFLOAT16_SETTINGS = (
    PeerSetting("engine-default-bf16", "engine", "default", precision="bfloat16",
                label="scratchflow CLI default with --precision=mixed_bfloat16"),
    PeerSetting(f"engine-graph-K{K}-bf16", "engine", "graph", K, precision="bfloat16",
                label=f"scratchflow graph, K={K}, mixed_bfloat16"),
    PeerSetting(f"engine-xla-K{K}-bf16", "engine", "xla", K, precision="bfloat16",
                label=f"scratchflow xla, K={K}, mixed_bfloat16"),
    PeerSetting("torch-eager-2t-bf16", "torch", "eager", threads=2, precision="bfloat16",
                label="PyTorch eager, 2 threads, torch.autocast bfloat16"),
)


@dataclasses.dataclass(frozen=True)
class Budget:
    batch_sizes: tuple
    examples: int  # examples per timed epoch: 0 for the whole training set
    rounds: int
    tta_epochs: int  # the cap of the time-to-accuracy runs


FULL = Budget((32, 256, 1024, 4096), 30720, 3, 30)  # timed epochs of 30,720 examples: ~15 min on 2 cores
QUICK = Budget((32, 1024), 8192, 2, 2)


def engine_default(batch_size: int, precision: str = "float32") -> tuple:
    """(mode, K, threads per op, shards, dot library) that `python train.py --batch_size=B
    [--precision=mixed_bfloat16]` runs with on a CPU (engine/app/defaults.py's `with_steps_per_call`,
    `resolved`, `threads_of`, `dot_library_of`)."""
    from engine.app import defaults

    config = defaults.with_steps_per_call(TrainConfig(batch_size=batch_size, precision=precision), (28, 28), 10)
    config, device = defaults.resolved(config)
    return (config.mode, config.steps_per_execution, defaults.threads_of(config, device), config.shards,
            defaults.dot_library_of(config, device))


def resolved(setting: PeerSetting, batch_size: int) -> dict:
    """The setting as its worker gets it, the engine's default resolved for this batch size."""
    fields = dataclasses.asdict(setting)
    if setting.mode == "default" and setting.framework == "engine":
        policy = "mixed_bfloat16" if setting.precision == "bfloat16" else "float32"
        (fields["mode"], fields["steps_per_execution"], fields["threads"], fields["shards"],
         fields["dots"]) = engine_default(batch_size, policy)
    return fields


def environment(framework: str, threads: int, dots: str = "xla") -> dict:
    """What a worker's environment says of `threads` per op and, for the engine, of the library its
    XLA hands the dots to (`dots`: XLA_FLAGS as train.py sets them, after this process's own, since
    XLA reads them once per process). TensorFlow's and XLA's pools are fixed
    when the process starts (PyTorch's is set at run time, `torch.set_num_threads`): the engine
    reads TF_NUM_INTRAOP_THREADS. JAX has no thread setting: its pool is sized by the CPUs the
    process may run on, so its worker pins itself to `threads` CPUs (`peer_worker.CPUS`) before
    importing JAX (jax-ml/jax#1539). The XLA_FLAGS often given for it
    (`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`) changed nothing: a
    4096 x 4096 matmul under them kept 1.94 cores busy, pinned to one CPU 1.00 (jax 0.10.2). The
    throughput table's "cores busy" shows whether each setting's threads held (`peers.threads_not_held`)."""
    told = {}
    if framework == "engine" and dots != "xla":
        told["XLA_FLAGS"] = xla_flags.with_dot_library(os.environ.get("XLA_FLAGS", ""), dots)
    if threads and framework == "engine":
        told["TF_NUM_INTRAOP_THREADS"] = str(threads)
    if threads and framework == "jax":
        told["BENCH_PEER_CPUS"] = str(threads)
    return told


def environment_at(setting: PeerSetting, batch_size: int) -> dict:
    """The worker environment `setting` needs at `batch_size` (the engine's default threads and dots change with it)."""
    fields = resolved(setting, batch_size)
    return environment(setting.framework, fields["threads"], fields["dots"])


def bfloat16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> List[str]:
    """The CPU's bfloat16 instructions among amx_bf16, avx512_bf16 (empty: none, or not Linux)."""
    return cpu_flags(("amx_bf16", "avx512_bf16"), cpuinfo)


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (Linux), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or "unknown")


def initial_weights(seed: int = 0) -> list:
    """[(kernel, bias)] per Dense layer of the engine's reference model, as NumPy: every framework's start."""
    model = workloads.engine_trainer(workloads.SETTINGS[f"xla-K{K}"], seed).model
    variables = [variable.numpy() for variable in model.trainable_variables]
    return list(zip(variables[0::2], variables[1::2]))

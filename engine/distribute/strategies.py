"""Which `tf.distribute` strategy a run uses: `--strategy=none|mirrored|multi_worker|tpu`.

- `none`: no strategy; the plain `Trainer` on one device.
- `mirrored`: `MirroredStrategy`, one replica per local GPU (or per logical CPU device made
  by `--cpu_devices=N`), all on this machine. Gradients are summed across replicas every step.
- `multi_worker`: `MultiWorkerMirroredStrategy`, the same over several machines (workers).
  Configured the standard way, by the `TF_CONFIG` environment variable every worker gets:

      {"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}

  TF_CONFIG is checked first, and the wait for every peer to join is bounded by
  `collective_timeout` seconds (engine/distribute/cluster.py). Every collective is bounded by
  it too, so a worker whose peer died stops with an error instead of waiting forever, which
  `peer_failures_reported` turns into one ClusterError line (`engine.distribute.launch`
  starts N local workers).
- `tpu`: `TPUStrategy` over the cores a `TPUClusterResolver` finds (a Cloud TPU VM).

Variables must be created under `strategy.scope()` to be mirrored: `DistributedTrainer`
(engine/distribute/distributed_training.py) does so for the model, the optimizer's slots and the metrics.
"""

import contextlib
import logging
import os
import re
from typing import Iterator, Optional

import tensorflow as tf

from engine.distribute import cluster
from engine.run import devices, quiet
from engine.run.config import STRATEGIES
from engine.errors import ClusterError, ConfigError


def split_cpu(count: int) -> None:
    """Splits the host CPU into `count` logical devices, /device:CPU:0 .. CPU:count-1.

    They share the same cores and memory: this lets MirroredStrategy run (and be tested)
    without GPUs, but it cannot make anything faster. It must happen before TensorFlow's
    runtime starts, that is before the first op runs.

    Raises:
      ConfigError: when the runtime has already started, or for count < 1.
    """
    if count < 1:
        raise ConfigError(f"--cpu_devices must be >= 1, got {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise ConfigError(f"--cpu_devices={count}: TensorFlow has already started with "
                              f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); "
                              "split the CPU before any TensorFlow op runs") from None


def create(name: str, device: str = "auto", collective_timeout: float = 60.0) -> Optional[tf.distribute.Strategy]:
    """The strategy called `name` (None for "none"); `--device=tpu` implies "tpu".

    Args:
      name: one of STRATEGIES.
      device: the kind of device the run uses (`engine.run.devices.Device.kind`): "tpu" selects
        TPUStrategy, "cpu" keeps mirrored replicas on the CPU devices even where GPUs exist.
      collective_timeout: seconds any cross-worker all-reduce may wait (multi_worker only).

    Raises:
      ConfigError: for an unknown name, or a TPU that cannot be found.
    """
    quiet.set_logger_level("tensorflow", logging.WARNING)  # strategies log every reduction at INFO level
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "tpu" or device == "tpu":
        return _tpu_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        replicas = gpus if gpus and device != "cpu" else tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([replica.name for replica in replicas])
    if name == "multi_worker":
        found = cluster.check(os.environ.get("TF_CONFIG"))
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
        with cluster.deadline(collective_timeout, *found) if found else contextlib.nullcontext():
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return None


def _tpu_strategy() -> tf.distribute.TPUStrategy:
    """TPUStrategy over every core of the TPU the resolver finds, initialised once.

    As the Cloud TPU guide for custom loops: resolve, connect, initialise the TPU system,
    then build the strategy; everything after that runs inside `strategy.scope()`.
    """
    resolver = devices.tpu_resolver()
    if resolver is None:
        raise ConfigError("--strategy=tpu: no TPU found (no /dev/accel* device and no TPU_NAME set); "
                          "run on a Cloud TPU VM, or use --strategy=mirrored or none")
    return tf.distribute.TPUStrategy(resolver)


def describe(strategy: Optional[tf.distribute.Strategy]) -> str:
    """One line for the start-up banner, e.g. 'MirroredStrategy, 2 replicas'."""
    if strategy is None:
        return "no strategy (one device)"
    workers = ""
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver is not None:
        jobs = resolver.cluster_spec().as_dict()
        workers = f", worker {resolver.task_id} of {len(jobs.get('worker', [])) or 1}"
    return f"{type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas{workers}"


# What a collective raises when a peer worker is gone or does not answer in time.
PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                 tf.errors.CancelledError)


@contextlib.contextmanager
def peer_failures_reported() -> Iterator[None]:
    """A collective that failed because a peer worker is gone becomes one ClusterError line."""
    try:
        yield
    except PEER_FAILURES as error:
        cause = f"{type(error).__name__}: {_cause(error.message)}"
        raise ClusterError(f"a peer worker stopped answering ({cause}); the run cannot go on without it: "
                           "restart every worker") from error


_NOISE = ("Graph execution error", "Detected at node", "File ", "Additional GRPC", ":UNKNOWN", "The error could")


def _cause(message: str) -> str:
    """The line of a collective's error that says why it failed ("Collective ops is aborted by:
    ..."), without the graph trace, node names and gRPC details around it."""
    lines = [re.sub(r"\{\{[^}]*\}\}|\[\[.*\]\]", "", line).strip() for line in (message or "").splitlines()]
    useful = [line for line in lines if line and not line.startswith(_NOISE)]
    return next((line for line in useful if "aborted by" in line), useful[0] if useful else "no details")[:200]

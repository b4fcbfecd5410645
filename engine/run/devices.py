"""Which device a run uses: `--device=auto|cpu|gpu|tpu`, resolved once and printed at start-up.

`auto` takes the most capable device present: a TPU if a TPU cluster resolver connects, else
the first GPU TensorFlow sees, else the CPU. So the same command runs on a laptop, a GPU box or
a Cloud TPU VM without code changes. The TPU probe only runs where a TPU can be (a TPU VM has
`/dev/accel*` devices, or `TPU_NAME` names a remote one): elsewhere the resolver would query
the cloud metadata server and wait for it to time out.
"""

import dataclasses
import functools
import glob
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import tensorflow as tf

from engine.run.config import DEVICES
from engine.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Device:
    kind: str  # "cpu", "gpu" or "tpu"
    name: str  # TensorFlow's device string, for `with tf.device(name)`
    description: str  # one line for the start-up banner


@functools.lru_cache(maxsize=None)
def tpu_resolver():
    """A connected TPUClusterResolver, or None where there is no TPU; probed (and the TPU
    system initialised) once per process, since `select` and `engine.distribute.strategies` both ask."""
    if not (glob.glob("/dev/accel*") or os.environ.get("TPU_NAME")):
        return None
    try:
        # "local": the TPU attached to this VM (a Cloud TPU VM), as Google's TPU VM guide passes.
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME") or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, tf.errors.OpError):
        return None


def cpu_topology(cpus: Optional[Iterable[int]] = None,
                 sysfs: Path = Path("/sys/devices/system/cpu")) -> Tuple[int, int]:
    """(physical cores, logical CPUs) among the CPUs this process may run on (its affinity).

    Two logical CPUs are hyperthreads of one core when Linux gives them the same package and
    core id (`topology/physical_package_id`, `topology/core_id`). Where that cannot be read (not
    Linux, a container hiding /sys), every logical CPU counts as a core: the answer that leaves
    TensorFlow's thread pool as it is (`engine.execution.threads_for`).
    """
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cpus = sorted(cpus)
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus), len(cpus)
    return len(cores), len(cpus)


def cpu_flags(names: Sequence[str], cpuinfo: Path = Path("/proc/cpuinfo")) -> List[str]:
    """Which of the instruction-set `names` the CPU lists in /proc/cpuinfo (empty: none, or not Linux)."""
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])) if cpuinfo.exists() else set()
    return [flag for flag in names if flag in flags]


def select(requested: str = "auto") -> Device:
    """Resolves `requested` to a Device present on this machine.

    Raises:
      ConfigError: for an unknown name, or a device kind this machine does not have.
    """
    if requested not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested in ("auto", "tpu") and tpu_resolver() is not None:
        tpus = tf.config.list_logical_devices("TPU")
        return Device("tpu", tpus[0].name, f"TPU ({len(tpus)} cores)")
    if requested == "tpu":
        raise ConfigError("--device=tpu: no TPU found (no /dev/accel* and no TPU_NAME); use --device=auto")
    gpus = tf.config.list_physical_devices("GPU")
    if requested in ("auto", "gpu") and gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return Device("gpu", "/device:GPU:0", f"GPU 0 of {len(gpus)}: {details.get('device_name', 'unknown')}")
    if requested == "gpu":
        raise ConfigError("--device=gpu: TensorFlow sees no GPU (is tensorflow[and-cuda] installed and "
                          "nvidia-smi working?); use --device=auto or --device=cpu")
    return Device("cpu", "/device:CPU:0", f"CPU ({os.cpu_count()} cores)")

"""What a training run checks before TensorFlow loads: where it writes, once, where it will write.

A multi-worker run's worker i > 0 writes `OUTPUT_DIR/worker<i>` (so no two processes write the
same file); the output directory is made final first (`engine.distribute.cluster.output_dir`,
read from TF_CONFIG), and then every directory the run writes is checked, each once: the
output directory and its `checkpoints/`, `--tensorboard_dir`, `--tfds_dir`, `--export_dir`
(which may not hold the others), and the checkpoint `--resume_from` names. Nothing is created.
"""

import dataclasses
import os

from engine.deploy import manifest
from engine.distribute import cluster
from engine.errors import ConfigError
from engine.run import directories
from engine.run.config import TrainConfig
from engine.run.directories import check_output_dir


def settle(config: TrainConfig) -> TrainConfig:
    """`config` with the output directory this process writes, once every directory it writes is checked.

    Raises:
      ConfigError: a directory that cannot be written, or a TF_CONFIG that cannot be used, in one line.
    """
    if config.strategy == "multi_worker" and config.device != "tpu":  # --device=tpu runs TPUStrategy instead
        config = dataclasses.replace(config, output_dir=cluster.output_dir(config.output_dir,
                                                                           os.environ.get("TF_CONFIG")))
    check_directories(config)
    return config


def check_directories(config: TrainConfig) -> None:
    """Every directory the run will write (nothing is created)."""
    check_output_dir(config.output_dir)
    checkpoints = os.path.join(config.output_dir, "checkpoints")
    if os.path.exists(checkpoints) and not os.path.isdir(checkpoints):
        raise ConfigError(f"{checkpoints} is a file, not the checkpoint directory: move it away, or pass another "
                          "--output_dir")
    directories.check_subdirectory(checkpoints, contents=True)  # TensorFlow would write through a link
    for flag, path in (("--tensorboard_dir", config.tensorboard_dir),
                       ("--tfds_dir" if config.tfds_dir else "--tfds_dir (by default TFDS_DATA_DIR or "
                        "~/tensorflow_datasets)", config.tfds_dir or default_tfds_dir()),
                       ("--export_dir", config.export_dir)):
        if path:
            check_output_dir(path, flag)
    if config.export_dir:
        manifest.check_export_dir(config.export_dir, {"--output_dir": config.output_dir, "--data_dir": config.data_dir,
                                                      "--tensorboard_dir": config.tensorboard_dir,
                                                      "--tfds_dir": config.tfds_dir})
    if config.resume_from and not os.path.isfile(f"{config.resume_from}.index"):
        raise ConfigError(f"--resume_from {config.resume_from} is not a checkpoint (no {config.resume_from}.index): "
                          "pass a path prefix like OUTPUT_DIR/checkpoints/ckpt-3")


def check_comparison(config: TrainConfig) -> None:
    """What `--compare_keras` cannot do, refused before TensorFlow loads: it trains on one device and
    writes parity.json and parity.png only, so a --strategy or an --export_dir would be ignored."""
    if config.strategy != "none":
        raise ConfigError(f"--compare_keras trains on one device; drop --strategy={config.strategy}")
    if config.export_dir:
        raise ConfigError("--compare_keras trains both sides for the comparison and exports neither: drop "
                          "--export_dir (a run without --compare_keras exports)")


def default_tfds_dir() -> str:
    """Where TensorFlow Datasets keeps prepared data when --tfds_dir is not given (its own rule:
    $TFDS_DATA_DIR, else ~/tensorflow_datasets): checked like any output, so HOME=/dev/null is one
    line before any work, not a failure after the data were read."""
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")

"""Strategy selection, the split of a batch over replicas, and the errors a user can meet.

Everything here runs in the test process (no logical CPU split needed); the numbers of
mirrored and multi-worker training are checked in test_mirrored.py and test_multi_worker.py.
"""

import contextlib
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers
from engine.distribute import strategies, launch, replicated
from engine.run.config import TrainConfig
from engine.distribute.distributed_training import DistributedTrainer
from engine.errors import ClusterError, ConfigError
from layers import mlp
from tests.conftest import REPO


@pytest.mark.parametrize("size, replicas", [(64, 2), (65, 2), (7, 3), (3, 3), (33, 8)])
def test_a_batch_splits_into_contiguous_shares_in_replica_order_differing_by_at_most_one(size, replicas):
    batch = np.arange(100, 100 + size)
    shares = replicated.replica_shares(batch, replicas)
    assert len(shares) == replicas
    np.testing.assert_array_equal(np.concatenate(shares), batch)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1 and min(map(len, shares)) >= 1


def test_a_batch_smaller_than_the_replica_count_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match="a batch of 1 examples cannot feed 2 replicas.*batch_size >= 2"):
        replicated.replica_shares(np.arange(1), 2)


def test_each_input_pipeline_yields_its_own_replicas_shares_of_every_step():
    images = tf.reshape(tf.range(20, dtype=tf.float32), [20, 1])
    labels = tf.range(20)
    block = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]])  # K=2 steps of 8
    # Worker 1 of 2, 4 replicas in all: it feeds replicas 2 and 3, i.e. the back half of each batch.
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4)
    elements = [(x.numpy().ravel().tolist(), y.numpy().tolist())
                for x, y in replicated.block_dataset(images, labels, block, context)]
    assert [y for _, y in elements] == [[4, 5], [6, 7], [12, 13], [14, 15]]
    assert [x for x, _ in elements] == [[4.0, 5.0], [6.0, 7.0], [12.0, 13.0], [14.0, 15.0]]


@pytest.mark.parametrize("field, value, message", [
    ("strategy", "horovod", "--strategy must be one of none, mirrored, multi_worker, tpu, got 'horovod'"),
    ("cpu_devices", -1, "--cpu_devices must be >= 0"),
    ("collective_timeout", 0.0, "--collective_timeout must be > 0 seconds, got 0.0"),
])
def test_bad_distribution_settings_are_refused_by_the_config(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_splitting_the_cpu_after_tensorflow_started_is_one_clear_error():
    tf.constant(1.0) + 1.0  # the runtime is surely up
    with pytest.raises(ConfigError, match="--cpu_devices=3: TensorFlow has already started with 1 CPU device"):
        strategies.split_cpu(3)


def test_a_malformed_tf_config_is_refused_before_any_cluster_wait(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"index": 3}}')
    with pytest.raises(ConfigError, match="TF_CONFIG task index 3 is out of range for 1 workers"):
        strategies.create("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid"):
        strategies.create("multi_worker")


def test_launcher_gives_each_worker_the_same_cluster_and_its_own_index():
    ports = launch.free_ports(3)
    assert len(set(ports)) == 3
    addresses = [f"127.0.0.1:{port}" for port in ports]
    configs = [json.loads(launch.tf_config(addresses, index)) for index in range(3)]
    assert all(config["cluster"] == {"worker": addresses} for config in configs)
    assert [config["task"] for config in configs] == [{"type": "worker", "index": i} for i in range(3)]


def test_xla_on_cpu_replicas_is_refused_with_the_reason_and_the_fix():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model, optimizer = mlp((8,), 10), optimizers.SGD(0.1)
    with pytest.raises(ConfigError, match="XLA only on GPUs or TPUs.*use --mode=graph"):
        DistributedTrainer(strategy, model, losses.sparse_categorical_crossentropy, optimizer, "xla")


def test_tpu_strategy_without_a_tpu_exits_with_one_line_and_no_hang(tmp_path):
    start = time.monotonic()
    run = subprocess.run([sys.executable, "train.py", "--strategy=tpu", f"--output_dir={tmp_path}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        "train.py: error: --strategy=tpu: no TPU found (no /dev/accel* device and no TPU_NAME set); "
        "run on a Cloud TPU VM, or use --strategy=mirrored or none")
    assert "Traceback" not in run.stderr
    assert time.monotonic() - start < 60


def test_a_failed_collective_becomes_one_line_naming_the_cause_without_the_graph_trace():
    message = ("Graph execution error:\n\nDetected at node while/CollectiveReduceV2 defined at:\n  File \"x.py\", "
               "line 1\n\nCollective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error "
               "information from remote target /job:worker/replica:0/task:1\n\t [[{{node while/CollectiveReduceV2}}]]")
    with pytest.raises(ClusterError) as raised:
        with strategies.peer_failures_reported():
            raise tf.errors.UnavailableError(None, None, message)
    assert str(raised.value) == ("a peer worker stopped answering (UnavailableError: Collective ops is aborted by: "
                                 "recvmsg:Connection reset by peer); the run cannot go on without it: "
                                 "restart every worker")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("index, written", [(0, ""), (1, "worker1")])
def test_a_worker_of_a_multi_worker_run_has_its_output_directory_settled_and_checked_before_tensorflow(
        index, written, tmp_path, monkeypatch):
    """Worker i > 0 writes OUTPUT_DIR/worker<i>; that directory is the one checked, once, from TF_CONFIG alone."""
    from engine.app import preflight

    ports = [free_port(), free_port()]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                                                "task": {"type": "worker", "index": index}}))
    settled = preflight.settle(TrainConfig(strategy="multi_worker", output_dir=str(tmp_path / "run")))
    assert settled.output_dir == (str(tmp_path / "run" / written) if written else str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "worker1").write_text("")  # a file where worker 1 would write
    with pytest.raises(ConfigError, match="worker1 is a file") if index else contextlib.nullcontext():
        preflight.settle(TrainConfig(strategy="multi_worker", output_dir=str(tmp_path / "run")))
    assert preflight.settle(TrainConfig(output_dir=str(tmp_path / "run"))).output_dir == str(tmp_path / "run")

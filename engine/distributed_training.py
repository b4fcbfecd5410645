"""`Trainer` on a `tf.distribute` strategy: the same steps, run by every replica on its share.

Only where the variables live (`_build`) and the compiled calls change (`_compile`,
`_train_block`, `_test_block`); the epoch loop, the batches and their order are `Trainer.fit`'s.
One call runs K steps, as the Cloud TPU guide's custom loop does:

    @tf.function
    def steps(iterator, K, global_batch):
        for k in tf.range(K):                              # one loop in the graph
            images, labels = next(iterator)                # this replica's share of batch k
            per_replica = strategy.run(train_step, (images, labels, global_batch))
            loss[k] = strategy.reduce(SUM, per_replica)    # shares of the mean -> the mean

The data of one call go through `strategy.distribute_datasets_from_function`, each input
pipeline (one per worker) taking its replicas' shares of each global batch
(`replicated.block_dataset`). `train_step` scales each replica's loss by the global batch
and `ReplicatedOptimizer` sums the gradients, so a step is the single-device step.
"""

import functools
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from engine import distribute, replicated
from engine.errors import ConfigError
from engine.training import Trainer, test_step, train_step

class DistributedTrainer(Trainer):
    """A `Trainer` whose model, optimizer and metrics live under `strategy.scope()`.

    Create the model (and build it) and the optimizer under `strategy.scope()` too, so that
    their variables are mirrored: one copy per replica, kept identical.

    Raises:
      ConfigError: for XLA on replicas other than GPUs or TPUs (see `_compile_loop`), or eager
        mode on a TPU (TPUStrategy needs a tf.function).
    """

    def __init__(self, strategy: tf.distribute.Strategy, model, loss_fn: Callable, optimizer,
                 mode: str = "graph", steps_per_execution: int = 1):
        self.strategy = strategy
        self._on_tpu = isinstance(strategy, tf.distribute.TPUStrategy)
        replica_devices = strategy.extended.worker_devices
        if mode == "xla" and not self._on_tpu and not all("GPU" in device.upper() for device in replica_devices):
            raise ConfigError(f"--mode=xla with --strategy on {', '.join(replica_devices)}: TensorFlow compiles a "
                              "replicated step with XLA only on GPUs or TPUs (XLA cannot span devices, and "
                              "CPU replicas need a cross-device merge XLA cannot hold); use --mode=graph")
        if mode == "eager" and self._on_tpu:
            raise ConfigError("--mode=eager with --strategy=tpu: TPUStrategy runs steps only inside a "
                              "tf.function; use --mode=graph or xla")
        with strategy.scope():
            super().__init__(model, loss_fn, optimizer, mode, steps_per_execution)

    def _build(self, images: tf.Tensor) -> None:
        with self.strategy.scope():  # the weights and the optimizer's slots are mirrored
            super()._build(images)

    def _compile(self, images: tf.Tensor) -> None:
        if self._train_steps is not None:
            return
        self._build(images)
        metrics = (self.loss_metric, self.accuracy_metric)
        optimizer = replicated.ReplicatedOptimizer(self.optimizer)
        train = functools.partial(train_step, self.model, self.loss_fn, optimizer, *metrics)
        self._train_steps = self._compile_loop(train)
        self._test_steps = self._compile_loop(functools.partial(test_step, self.model, self.loss_fn, *metrics))

    def _compile_loop(self, step: Callable) -> Callable:
        """K calls of `strategy.run(step)` in one function, compiled as `mode` says.

        XLA compiles each replica's step (the whole function cannot be one XLA program: it
        spans devices); on a TPU, TPUStrategy compiles `strategy.run` with XLA by itself.
        """
        if self.mode == "xla" and not self._on_tpu:
            step = tf.function(step, jit_compile=True)

        def steps(iterator, count: tf.Tensor, global_batch_size: tf.Tensor) -> tf.Tensor:
            losses = tf.TensorArray(tf.float32, size=count)
            for k in tf.range(count):
                images, labels = next(iterator)
                per_replica = self.strategy.run(step, args=(images, labels, global_batch_size))
                losses = losses.write(k, self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
            return losses.stack()

        return steps if self.mode == "eager" else tf.function(steps)

    def _run_block(self, steps: Callable, images: tf.Tensor, labels: tf.Tensor, block: np.ndarray) -> tf.Tensor:
        pipelines = self.strategy.distribute_datasets_from_function(
            functools.partial(replicated.block_dataset, images, labels, block))
        return steps(iter(pipelines), tf.constant(len(block)), tf.constant(block.shape[1], tf.float32))

    def _train_block(self, images: tf.Tensor, labels: tf.Tensor, block: np.ndarray) -> tf.Tensor:
        return self._run_block(self._train_steps, images, labels, block)

    def _test_block(self, images: tf.Tensor, labels: tf.Tensor, block: np.ndarray) -> tf.Tensor:
        return self._run_block(self._test_steps, images, labels, block)

    def _local_metrics(self) -> Dict[str, float]:
        """This worker's replicas' metrics, read with no communication (for progress lines).

        Reading a metric in full sums its copies over ALL workers: a collective that every
        worker must join at the same point, which a time-driven progress bar cannot promise.
        """
        def local(variable: tf.Variable) -> float:
            return float(sum(part.numpy() for part in self.strategy.experimental_local_results(variable)))

        return {metric.name: local(metric.total) / max(local(metric.count), 1.0)
                for metric in (self.loss_metric, self.accuracy_metric)}

    def fit(self, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int, *args,
            progress: Optional[Callable] = None, **kwargs):
        """`Trainer.fit`, refusing up front a batch size some replica would get nothing of, and
        turning a lost peer worker into one clear `ClusterError`; progress shows this worker's share."""
        self._check_shares(len(images), batch_size)
        if kwargs.get("validation_data") is not None:
            self._check_shares(len(kwargs["validation_data"][0]), batch_size)
        local_progress = (None if progress is None
                          else lambda step, steps, _: progress(step, steps, self._local_metrics))
        with distribute.peer_failures_reported():
            return super().fit(images, labels, epochs, batch_size, *args, progress=local_progress, **kwargs)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 32,
                 prefix: str = "") -> Dict[str, float]:
        self._check_shares(len(images), batch_size)
        with distribute.peer_failures_reported():
            return super().evaluate(images, labels, batch_size, prefix)

    def _check_shares(self, examples: int, batch_size: int) -> None:
        """Before any step: every replica gets examples from the full batches and the last one."""
        for size in {batch_size, examples % batch_size or batch_size}:
            try:
                replicated.replica_shares(np.arange(size), self.strategy.num_replicas_in_sync)
            except ValueError as error:
                raise ConfigError(str(error)) from None

"""`Trainer` on a `tf.distribute` strategy: the core's steps, run by every replica on its share.

Only where the variables live (`build`) and the compiled calls change (`_compile`); the epoch
loop, the batches and their order are `Trainer.fit`'s. One call runs K steps, as the Cloud TPU
guide's custom loop does:

    @tf.function
    def steps(iterator, K, global_batch):
        for k in tf.range(K):                              # one loop in the graph
            images, labels = next(iterator)                # this replica's share of batch k
            per_replica = strategy.run(replica_train_step, (images, labels, global_batch))
            loss[k] = strategy.reduce(SUM, per_replica)    # shares of the mean -> the mean

The data of one call go through `strategy.distribute_datasets_from_function`, each input
pipeline (one per worker) taking its replicas' shares of each global batch
(`replicated.block_dataset`). A replica runs the core's `train_step` unchanged on its share;
`replica_train_step` hands it a `ReplicatedOptimizer` that weighs the share's gradients by
share / global batch and sums them over replicas, so a step is the single-device step.
"""

import functools
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf

from engine.distribute import replicated, strategies
from engine.errors import ConfigError
from engine.gradients import tape_gradients
from engine.training import Trainer, test_step, train_step


def replica_train_step(model, loss_fn, optimizer, loss_metric, metrics,
                       images: tf.Tensor, labels: tf.Tensor, global_batch_size: tf.Tensor,
                       gradients: Callable = tape_gradients) -> tf.Tensor:
    """`train_step` on this replica's share; returns the share's part of the global mean loss.

    With share n_r of a global batch B, the weight n_r / B turns the share's mean into its part
    of the global mean (`sum_{i in share} loss_i / B`, what `tf.nn.compute_average_loss`
    computes), so the parts SUM over replicas to the whole batch's loss, and so do the weighted
    gradients (`replicated.ReplicatedOptimizer`).
    """
    weight = tf.cast(tf.shape(labels)[0], tf.float32) / global_batch_size
    loss = train_step(model, loss_fn, replicated.ReplicatedOptimizer(optimizer, weight),
                      loss_metric, metrics, images, labels, gradients=gradients)
    return loss * weight


def replica_test_step(model, loss_fn, loss_metric, metrics,
                      images: tf.Tensor, labels: tf.Tensor, global_batch_size: tf.Tensor) -> tf.Tensor:
    """`test_step` on this replica's share; returns its part of the global mean loss."""
    loss = test_step(model, loss_fn, loss_metric, metrics, images, labels)
    return loss * tf.cast(tf.shape(labels)[0], tf.float32) / global_batch_size


class DistributedTrainer(Trainer):
    """A `Trainer` whose model, optimizer and metrics live under `strategy.scope()`.

    Create the model (and build it) and the optimizer under `strategy.scope()` too, so that
    their variables are mirrored: one copy per replica, kept identical.

    Raises:
      ConfigError: for XLA on replicas other than GPUs or TPUs (see `_compile_loop`), or eager
        mode on a TPU (TPUStrategy needs a tf.function).
    """

    def __init__(self, strategy: tf.distribute.Strategy, model, loss_fn: Callable, optimizer,
                 mode: str = "graph", steps_per_execution: int = 1, gradients: str = "tape", metrics=None):
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
            super().__init__(model, loss_fn, optimizer, mode, steps_per_execution, gradients, metrics)

    def build(self, input_shape) -> None:
        with self.strategy.scope():  # the weights and the optimizer's slots are mirrored
            super().build(input_shape)

    def _compile(self, example_shape: Tuple[int, ...], labels: np.ndarray) -> Tuple[Callable, Callable]:
        train = functools.partial(replica_train_step, self.model, self.loss_fn, self.optimizer,
                                  self.train_loss, self.train_metrics, gradients=self.gradients)
        test = functools.partial(replica_test_step, self.model, self.loss_fn, self.eval_loss, self.eval_metrics)
        return self._compile_loop(train), self._compile_loop(test)

    def _compile_loop(self, step: Callable) -> Callable:
        """K calls of `strategy.run(step)` in one function, compiled as `mode` says; returns the
        block call `(images, labels, block) -> K losses` that feeds it the block's shares.

        XLA compiles each replica's step (the whole function cannot be one XLA program: it
        spans devices); on a TPU, TPUStrategy compiles `strategy.run` with XLA by itself.
        """
        if self.user_code() is None:  # the engine's own step, traced as written (engine/tracing.py)
            step = tf.autograph.experimental.do_not_convert(step)
        if self.mode == "xla" and not self._on_tpu:
            step = tf.function(step, jit_compile=True)

        def steps(iterator, count: tf.Tensor, global_batch_size: tf.Tensor) -> tf.Tensor:
            losses = tf.TensorArray(tf.float32, size=count)
            for k in tf.range(count):
                images, labels = next(iterator)
                per_replica = self.strategy.run(step, args=(images, labels, global_batch_size))
                losses = losses.write(k, self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
            return losses.stack()

        compiled = steps if self.mode == "eager" else tf.function(steps)

        def run_block(images: tf.Tensor, labels: tf.Tensor, block: tf.Tensor) -> tf.Tensor:
            block = block.numpy()
            pipelines = self.strategy.distribute_datasets_from_function(
                functools.partial(replicated.block_dataset, images, labels, block))
            return compiled(iter(pipelines), tf.constant(len(block)), tf.constant(block.shape[1], tf.float32))

        return run_block

    def progress_logs(self) -> Dict[str, float]:
        """This worker's replicas' metrics, read with no communication (for progress lines).

        Reading a metric in full sums its copies over ALL workers: a collective that every
        worker must join at the same point, which a time-driven progress bar cannot promise.
        """
        def local(variable: tf.Variable) -> float:
            return float(sum(part.numpy() for part in self.strategy.experimental_local_results(variable)))

        return {metric.name: local(metric.total) / max(local(metric.count), 1.0)
                for metric in (self.train_loss, *self.train_metrics)}

    def fit(self, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int, *args, **kwargs):
        """`Trainer.fit`, refusing up front a batch size some replica would get nothing of, and
        turning a lost peer worker into one clear `ClusterError`."""
        self._check_shares(len(images), batch_size)
        if kwargs.get("validation_data") is not None:
            self._check_shares(len(kwargs["validation_data"][0]), batch_size)
        with strategies.peer_failures_reported():
            return super().fit(images, labels, epochs, batch_size, *args, **kwargs)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 32,
                 prefix: str = "") -> Dict[str, float]:
        self._check_shares(len(images), batch_size)
        with strategies.peer_failures_reported():
            return super().evaluate(images, labels, batch_size, prefix)

    def _check_shares(self, examples: int, batch_size: int) -> None:
        """Before any step: every replica gets examples from the full batches and the last one."""
        for size in {batch_size, examples % batch_size or batch_size}:
            try:
                replicated.replica_shares(np.arange(size), self.strategy.num_replicas_in_sync)
            except ValueError as error:
                raise ConfigError(str(error)) from None

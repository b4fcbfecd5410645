"""The two things data parallelism adds to a step: summed gradients, and each replica's data.

Every replica holds a copy of the weights and gets its own share (n_r examples) of the global
batch of B. Replica r differentiates its share's mean loss; weighted by n_r / B, the replicas'
gradients SUM to the gradient of the global batch's mean loss:

    g = d/dw (1/B) sum_{i<B} loss_i = sum_r (n_r / B) d/dw (1/n_r) sum_{i in share r} loss_i = sum_r w_r g_r

so after an all-reduce (SUM) every replica applies the same `g` to its copy and the copies
stay identical: one step of the single-device math, whatever the number of replicas.
"""

from typing import Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf


class ReplicatedOptimizer:
    """Wraps an optimizer so that `apply_gradients`, called by each replica inside
    `strategy.run`, weighs its gradients by `weight` (n_r / B), sums them across replicas and
    then updates every copy.

    The update itself is the wrapped optimizer's, unchanged: `strategy.extended.update`
    runs it once per replica, on that replica's device, where the mirrored weights, the
    optimizer's slots and its step counter each resolve to that replica's copy (as Keras's
    optimizers do). Where the strategy can update without leaving the replica (XLA on GPUs,
    TPUs), `maybe_merge_call` skips the switch to the cross-replica context.
    """

    def __init__(self, optimizer, weight: tf.Tensor):
        self.optimizer, self.weight = optimizer, weight

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[tf.Tensor], tf.Variable]]) -> None:
        pairs = [(grad, var) for grad, var in grads_and_vars if grad is not None]
        variables = [var for _, var in pairs]
        context = tf.distribute.get_replica_context()
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grad * self.weight for grad, _ in pairs])

        def update(strategy: tf.distribute.Strategy, *grads: tf.Tensor) -> None:
            def on_one_replica(_, *local_grads: tf.Tensor) -> None:
                self.optimizer.apply_gradients(zip(local_grads, variables))

            # The step counter is a variable every replica has: updating "it" runs
            # on_one_replica once per replica, in that replica's update context.
            strategy.extended.update(self.optimizer.iterations, on_one_replica, args=grads, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(update, context.strategy, *summed)


def replica_shares(batch: np.ndarray, replicas: int) -> List[np.ndarray]:
    """Splits one global batch (indices) into `replicas` contiguous shares, in replica order.

    The shares differ in size by at most one (`np.array_split`), so any batch of at least
    `replicas` examples splits; concatenated, they are the batch again.

    Raises:
      ValueError: when some replica would get no example at all.
    """
    if len(batch) < replicas:
        raise ValueError(f"a batch of {len(batch)} examples cannot feed {replicas} replicas: every replica "
                         f"needs at least one; use batch_size >= {replicas} and a data set size whose last "
                         f"partial batch (if any) has at least {replicas} examples")
    return np.array_split(batch, replicas)


def block_dataset(images: tf.Tensor, labels: tf.Tensor, block: np.ndarray,
                  context: tf.distribute.InputContext) -> tf.data.Dataset:
    """This input pipeline's per-replica batches for the K steps of `block` ([K, batch] indices).

    Replicas are numbered worker by worker, and each worker (input pipeline p of P) feeds its
    R/P local replicas in turn: so for every step, pipeline p yields the shares of replicas
    p*R/P .. (p+1)*R/P - 1, in order. Across all workers, every example of every global batch
    is used exactly once, as on one device. Shares may differ in size by one, hence ragged rows.
    """
    local = context.num_replicas_in_sync // context.num_input_pipelines
    first = context.input_pipeline_id * local
    shares = [share for batch in block
              for share in replica_shares(batch, context.num_replicas_in_sync)[first:first + local]]
    index = np.concatenate(shares)
    lengths = [len(share) for share in shares]
    x = tf.RaggedTensor.from_row_lengths(tf.gather(images, index), lengths)  # [K * local, (share), ...]
    y = tf.RaggedTensor.from_row_lengths(tf.gather(labels, index), lengths)
    return tf.data.Dataset.from_tensor_slices((x, y))

"""TensorBoard logging: a callback that writes scalars and weight histograms with `tf.summary`.

    tensorboard --logdir DIR       # then open http://localhost:6006

Per epoch (the event's step is the epoch number, so the x axis reads in epochs):

- scalars: `loss`, `accuracy`, `val_loss` and `val_accuracy` when validation ran,
  `learning_rate`, `steps_per_second` — the logs `Trainer.fit` returns, plus the optimizer's rate;
- histograms: every trainable variable by its name (`dense/kernel`, `dense/bias`, ...), to see
  weights spread out as they learn — or die, when a layer's histogram stops moving.

`tf.summary` writes protocol-buffer events to `DIR/events.out.tfevents.*`; they can be read
back without TensorBoard's server by `tf.compat.v1.train.summary_iterator`, as the tests do.
(`tf.summary.scalar`/`histogram` themselves come from the `tensorboard` package, a dependency.)
"""

from typing import Dict

import tensorflow as tf

from engine.callbacks import Callback

SCALARS = ("loss", "accuracy", "val_loss", "val_accuracy", "steps_per_second")


class TensorBoardLogger(Callback):
    """Writes one epoch's scalars and weight histograms to `log_dir` each time it is called.

    Example:
      >>> logger = TensorBoardLogger("runs/tb", trainer)
      >>> trainer.fit(x, y, epochs=5, batch_size=32, callbacks=[logger])
    """

    def __init__(self, log_dir: str, trainer):
        self.trainer = trainer
        self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch: int, logs: Dict[str, float]) -> None:
        with self.writer.as_default(step=epoch):
            for name in SCALARS:
                if name in logs:
                    tf.summary.scalar(name, logs[name])
            tf.summary.scalar("learning_rate", float(self.trainer.optimizer.learning_rate))
            for variable in self.trainer.model.trainable_variables:
                tf.summary.histogram(variable.name.removesuffix(":0"), variable)
        self.writer.flush()  # a run that is stopped or crashes still leaves every finished epoch readable

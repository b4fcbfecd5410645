# %% [markdown]
# ## 9. What changes with the batch size and the width
#
# The reference configuration trains 256 then 128 hidden units with batches of 32 for 30
# epochs. Why those? Measure. Each run below trains 3 epochs on the same images from the same
# seed, changing one thing. A bigger batch averages the gradient over more examples: the steps
# are less noisy and each costs less per example, but an epoch makes fewer of them, so at the
# same learning rate and epochs it learns less. Wider layers hold more weights: more capacity,
# more time per step. 256/128 at batch 32 is a middle that learns well within 30 epochs.

# %%
import time

import tensorflow as tf

from engine import losses, optimizers
from engine.data.validation import hold_out
from engine.run import plots
from engine.tour import course
from engine.training import Trainer
from layers import mlp

images, labels = course.training_set()
(train_images, train_labels), validation = hold_out(images, labels, 0.2)
runs = {}
print(f"{'hidden':>10} {'batch':>6} {'weights':>9} {'steps/epoch':>12} {'val accuracy':>13} {'val loss':>9} {'seconds':>8}")
for hidden, batch_size in [((256, 128), 32), ((256, 128), 128), ((256, 128), 512), ((32, 16), 32), ((1024, 512), 32)]:
    tf.random.set_seed(course.SEED)
    trainer = Trainer(mlp(hidden, 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.01))
    start = time.perf_counter()
    history = trainer.fit(train_images, train_labels, 3, batch_size, validation_data=validation, seed=course.SEED)
    seconds = time.perf_counter() - start
    label = f"{'-'.join(map(str, hidden))}, batch {batch_size}"
    runs[label] = history
    print(f"{'-'.join(map(str, hidden)):>10} {batch_size:>6} {trainer.model.count_params():>9,} "
          f"{-(-len(train_labels) // batch_size):>12} {history[-1]['val_accuracy']:>13.4f} "
          f"{history[-1]['val_loss']:>9.4f} {seconds:>8.1f}")

# %%
plots.plot_histories(runs, course.path("sizes.png"), title="Validation loss and accuracy, 3 epochs each, SGD 0.01: batch size and width")
course.show(course.path("sizes.png"))

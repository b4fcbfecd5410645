# %% [markdown]
# ## 5. Training, written out: a plain loop
#
# Training is one step repeated over batches: run the model forward and record it on a
# `tf.GradientTape`, compute the loss (the mean cross-entropy of the batch), ask the tape for
# the gradient of the loss with respect to every weight, and move each weight a little against
# its gradient (SGD: `w <- w - 0.01 * dloss/dw`). One pass over every batch is an epoch.
#
# The loss is computed from the logits, the scores the last Dense layer makes before its
# softmax (`model.logits(x)`): `-log softmax(z)[y] = log sum_j exp(z_j) - z_y` is exact for any
# scores, where `-log p[y]` of the rounded probabilities is not (a probability of 1e-16 rounds to
# 0, and its log to -inf), and its gradient, `softmax(z) - onehot(y)`, never vanishes.
# `losses.output_loss` is how the trainer picks this route for a model ending in a softmax.
#
# Below is one epoch on the first 6,000 Fashion-MNIST training images (`course.TRAIN_SUBSET`), with the
# engine's model, loss and optimizer and nothing else: no `Trainer`. The batches are the ones
# `Trainer.fit` takes (`epoch_batches`: a shuffle drawn from the seed and the epoch number), so the
# numbers are exactly those of `Trainer(...).fit` in eager mode (`tests/test_tour_loop.py` checks).

# %%
import numpy as np
import tensorflow as tf

from engine import losses, optimizers
from engine.batches import epoch_batches
from engine.tour import course
from layers import mlp

images, labels = course.training_set()  # float32 [N, 28, 28] in [0, 1], int32 [N]
tf.random.set_seed(course.SEED)  # the same starting weights on every run
model = mlp((256, 128), 10)  # Flatten -> Dense 256 relu -> Dense 128 relu -> Dense 10 softmax
loss_fn = losses.sparse_categorical_crossentropy
optimizer = optimizers.SGD(learning_rate=0.01)

step_losses, loss_sum, correct, seen = [], 0.0, 0, 0
for step, index in enumerate(epoch_batches(len(images), 32, course.SEED, epoch=1), start=1):
    x, y = tf.constant(images[index]), tf.constant(labels[index])  # [32, 28, 28], [32]
    with tf.GradientTape() as tape:  # records the forward pass...
        logits = model.logits(x)  # [32, 10]: the output layer's x @ W + b, before its softmax
        loss = loss_fn(y, logits, from_logits=True)  # scalar: mean of -log softmax(logits)[i, label_i]
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)  # ...to play it backwards: dloss/dw, one per weight
    optimizer.apply_gradients(zip(gradients, variables))  # w <- w - 0.01 * dloss/dw
    step_losses.append(float(loss))
    loss_sum += float(loss) * len(index)  # a smaller last batch counts for its size
    probabilities = model.output_activation(logits)  # [32, 10]: softmax, each row sums to 1
    predicted = tf.argmax(probabilities, axis=1, output_type=tf.int32)  # [32]
    correct += int(tf.reduce_sum(tf.cast(predicted == y, tf.int32)))
    seen += len(index)
    if step % 50 == 0:
        print(f"step {step:4d}: batch loss {float(loss):.4f}, epoch so far: loss {loss_sum / seen:.4f}, "
              f"accuracy {correct / seen:.4f}")
print(f"epoch 1 ({step} steps of 32 over {seen:,} images): loss {loss_sum / seen:.4f}, accuracy {correct / seen:.4f}")

# %% [markdown]
# Every step's loss: noisy, since each batch is a different 32 images, and falling on average.

# %%
from engine.run import plots

plots.plot_step_losses(step_losses, course.path("loop_losses.png"), title="one epoch of the plain loop, batch 32")
course.show(course.path("loop_losses.png"))

# %% [markdown]
# The loss is the mean over the epoch's examples, and the accuracy is measured on each batch just
# before its update, as `Trainer.fit` and Keras report them. `engine/training.py` is this loop
# again, with the step compiled (graph or XLA) and callbacks around it.

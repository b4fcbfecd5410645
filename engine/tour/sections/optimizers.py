# %% [markdown]
# ## 7. Optimizers: SGD, momentum and Adam, side by side
#
# The backward pass gives dL/dw for every weight; the optimizer decides what to do with it.
# Three rules, from the one the loop used to Keras's default (g is the gradient, t the step
# number from 1, every operation element by element; each slot starts at zero):
#
#     SGD:       w <- w - lr g
#
#     momentum:  v <- momentum v - lr g                    a velocity: past gradients, decayed
#                w <- w + v
#
#     Adam:      m <- m + (1 - beta_1) (g - m)             the mean gradient, decayed
#                v <- v + (1 - beta_2) (g^2 - v)           the mean squared gradient, decayed
#                w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) m / (sqrt(v) + epsilon)
#
# SGD's step is proportional to the gradient. Momentum's grows while the gradient keeps its
# sign (towards lr / (1 - momentum) times it) and cancels when it flips. Adam divides the mean
# gradient by its root mean square, so every weight moves by about lr whatever the scale of its
# gradient; the square roots and the division by 1 - beta^t undo the bias of m and v towards
# their zero start. Each optimizer is a class in `engine/optimizers/` whose `update_rule` is
# exactly its formula, a pure function of the gradient, the weight and the slots:

# %%
import inspect

import numpy as np
import tensorflow as tf

from engine import optimizers

for kind in (optimizers.SGD, optimizers.Adam):
    print(inspect.getsource(kind.update_rule))

# %% [markdown]
# Everything else is the base class's (`engine/optimizers/optimizer.py`): the learning rate as a
# variable, the step counter, making the slots once, skipping `None` gradients, weight decay.
# To see the difference the rules make, give one weight a gradient of 1000 and another one of
# 0.001, twice, with the same learning rate:

# %%
gradients = tf.constant([1000.0, 0.001])
for name, optimizer in [("SGD", optimizers.SGD(0.001)), ("momentum", optimizers.SGD(0.001, momentum=0.9)),
                        ("Adam", optimizers.Adam(0.001))]:
    w = tf.Variable([0.0, 0.0])
    steps = []
    for _ in range(2):
        before = w.numpy()
        optimizer.apply_gradients([(gradients, w)])
        steps.append(w.numpy() - before)
    print(f"{name:<9} steps of the two weights: {np.array2string(steps[0], precision=6)} then "
          f"{np.array2string(steps[1], precision=6)}")

# %% [markdown]
# SGD moves the first weight a million times more than the second; momentum's second step is
# 1.9 times its first; Adam moves both by the learning rate. On the reference network, three
# epochs of the course's images with each, a fifth held out for validation (Adam with Keras's
# default rate, 0.001; the SGDs with the loop's 0.01):

# %%
from engine import losses
from engine.data.validation import hold_out
from engine.run import plots
from engine.tour import course
from engine.training import Trainer
from layers import mlp

images, labels = course.training_set()
(train_images, train_labels), validation = hold_out(images, labels, 0.2)
choices = {"SGD 0.01": optimizers.SGD(0.01), "momentum 0.9, 0.01": optimizers.SGD(0.01, momentum=0.9),
           "Adam 0.001": optimizers.Adam(0.001)}
histories = {}
for label, optimizer in choices.items():
    tf.random.set_seed(course.SEED)  # the same initial weights for each
    trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizer, mode="graph")
    histories[label] = trainer.fit(train_images, train_labels, epochs=3, batch_size=32, validation_data=validation,
                                   seed=course.SEED)
    last = histories[label][-1]
    print(f"{label:<19} epoch 3: loss {last['loss']:.4f} | validation loss {last['val_loss']:.4f}, "
          f"accuracy {last['val_accuracy']:.4f}")

plots.plot_histories(histories, course.path("optimizers.png"),
                     title=f"Validation loss and accuracy, 3 epochs on {len(train_labels):,} images, batch 32")
course.show(course.path("optimizers.png"))

# %% [markdown]
# With the same initial weights and the same batches, momentum and Adam are ahead of plain SGD
# after each epoch: they take larger steps where the gradient is consistent. The optimizer is
# a choice like the learning rate: `Trainer(model, loss, "adam")` takes it by name
# (`engine.optimizers.get`), with Keras's defaults. A new one is a subclass of
# `engine.optimizers.Optimizer` that names its slots and writes its `update_rule`, plus one line
# in `engine.optimizers.OPTIMIZERS`.

# %% [markdown]
# ## 8. `Trainer.fit`: epochs, validation, the curves, and the test set
#
# `engine.training.Trainer` is the loop of section 5 with the step compiled into a graph
# (`mode="graph"`) and measured as it goes. A fifth of the training images is held out for
# validation (`engine.data.validation.hold_out`, Keras's `validation_split` rule: the last ones),
# so we can watch how well the model does on images it does not learn from, epoch by epoch.

# %%
import tensorflow as tf

from engine import losses, optimizers
from engine.data.validation import hold_out
from engine.run import plots
from engine.tour import course
from engine.training import Trainer
from layers import mlp

images, labels = course.training_set()
(train_images, train_labels), validation = hold_out(images, labels, 0.2)
tf.random.set_seed(course.SEED)
trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.01), mode="graph")
history = trainer.fit(train_images, train_labels, epochs=10, batch_size=32, validation_data=validation, seed=course.SEED)
for logs in history:
    print(f"epoch {logs['epoch']:2d}: loss {logs['loss']:.4f}, accuracy {logs['accuracy']:.4f} | "
          f"validation loss {logs['val_loss']:.4f}, accuracy {logs['val_accuracy']:.4f}")

# %% [markdown]
# The figure `train.py` writes as `metrics.png` (`engine.run.plots.plot_history`):

# %%
plots.plot_history(history, course.path("fit_history.png"),
                   title=f"mlp 256-128, SGD 0.01, batch 32: {len(train_labels):,} training images")
course.show(course.path("fit_history.png"))

# %% [markdown]
# ### Evaluate
#
# The test set is read once, at the end: the 10,000 test images the model has never seen, in
# batches, without updates (`Trainer.evaluate`). Choosing anything by it would leak it into the
# model, which is why the validation split exists.

# %%
data = course.fashion_mnist()
scores = trainer.evaluate(data.test_images, data.test_labels, batch_size=32)
print(f"test: loss {scores['loss']:.4f}, accuracy {scores['accuracy']:.4f} on {len(data.test_labels):,} images")
predicted = trainer.model(data.test_images[:1000]).numpy().argmax(axis=1)
for number, name in enumerate(data.class_names):
    mask = data.test_labels[:1000] == number
    print(f"  {name:<12} {(predicted[mask] == number).mean():.2f} of {mask.sum()} right")

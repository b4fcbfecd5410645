# %% [markdown]
# ## 10. Early stopping
#
# Training loss keeps falling long after the model has begun to memorise its training images;
# the validation loss turns back up. `engine.run.early_stopping.EarlyStopping` watches the
# validation loss at the end of every epoch, stops once it has not improved for `patience`
# epochs in a row, and puts back the weights of the best epoch. A learning rate of 0.1 makes the
# turn come within a few epochs on these few thousand images.

# %%
import tensorflow as tf

from engine import losses, optimizers
from engine.data.validation import hold_out
from engine.run import plots
from engine.run.early_stopping import EarlyStopping
from engine.tour import course
from engine.training import Trainer
from layers import mlp

images, labels = course.training_set()
(train_images, train_labels), validation = hold_out(images, labels, 0.2)
tf.random.set_seed(course.SEED)
trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.1))
trainer.build((None, 28, 28))  # the callback copies the weights, so they must exist
stopper = EarlyStopping(trainer, monitor="val_loss", patience=3)
history = trainer.fit(train_images, train_labels, epochs=40, batch_size=32, validation_data=validation,
                      seed=course.SEED, callbacks=[stopper])
for logs in history:
    print(f"epoch {logs['epoch']:2d}: loss {logs['loss']:.4f}, validation loss {logs['val_loss']:.4f}, "
          f"validation accuracy {logs['val_accuracy']:.4f}")
print(stopper.summary())
restored = trainer.evaluate(*validation)
print(f"the model now: validation loss {restored['loss']:.4f}, accuracy {restored['accuracy']:.4f}")

# %%
plots.plot_history(history, course.path("early_stopping.png"),
                   title=f"SGD 0.1, patience 3: best val_loss at epoch {stopper.best_epoch}, "
                         f"stopped after {stopper.stopped_epoch or len(history)}")
course.show(course.path("early_stopping.png"))

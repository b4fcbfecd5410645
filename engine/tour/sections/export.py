# %% [markdown]
# ## 12. Deployment: TensorFlow Lite, and one prediction
#
# A trained model leaves the engine as files that need only TensorFlow to run
# (`engine.deploy.export`): a SavedModel with a serving signature (images in [0, 1] ->
# probabilities), and the same function converted to TensorFlow Lite for phones and small
# devices. `engine.deploy.serving.Classifier` loads either; `python -m engine.deploy.predict`
# is its command line.

# %%
import os

import numpy as np
import tensorflow as tf

from engine import losses, optimizers
from engine.deploy import export, serving
from engine.run import plots
from engine.tour import course
from engine.training import Trainer
from layers import mlp

data = course.fashion_mnist()
images, labels = course.training_set()
tf.random.set_seed(course.SEED)
trainer = Trainer(mlp((256, 128), 10), losses.sparse_categorical_crossentropy, optimizers.SGD(0.01))
trainer.fit(images, labels, epochs=3, batch_size=32, seed=course.SEED)
saved_model, tflite = export.export(trainer.model, data.image_shape, data.class_names, course.path("export"))
print(f"wrote {saved_model}/ and {tflite} ({os.path.getsize(tflite) / 1e6:.2f} MB)")

# %% [markdown]
# The TFLite file, loaded back without any of this project's classes, classifies a test image;
# it computes the engine's function up to float32 rounding.

# %%
classifier = serving.Classifier(tflite)
image, label = data.test_images[0], int(data.test_labels[0])  # [28, 28] in [0, 1]
probabilities = classifier.predict(image[np.newaxis])[0]  # [10]
best = int(probabilities.argmax())
engine_probabilities = trainer.model(image[np.newaxis]).numpy()[0]
print(f"TFLite says {classifier.class_names[best]} ({probabilities[best]:.3f}); the label is {data.class_names[label]}")
print(f"max |TFLite - engine| over the 10 probabilities: {np.abs(probabilities - engine_probabilities).max():.1e}")
plots.plot_prediction(image, probabilities, classifier.class_names, course.path("prediction.png"),
                      title=f"TFLite: {classifier.class_names[best]} ({probabilities[best]:.2f}); "
                            f"label: {data.class_names[label]}")
course.show(course.path("prediction.png"))

# %% [markdown]
# ## 4. One network four ways
#
# The reference network is `Flatten -> Dense(256, relu) -> Dense(128, relu) -> Dense(10, softmax)`.
# The **Sequential** style is a stack: each layer feeds the next. The **functional** style wires
# layers by calling them on the outputs of others (`Input`, then `layer(x)`), which also allows
# branches and skip connections (`layers/functional.py`). For a plain stack the two describe the
# same network: the same layers, the same 235,146 parameters and, given the same weights, the
# same outputs, in the engine and in Keras alike.

# %%
import numpy as np
import tensorflow as tf

from engine.compare import keras_twin
from layers import Dense, Flatten, Input, Model, mlp

tf.random.set_seed(0)
engine_sequential = mlp((256, 128), 10)  # Sequential([Flatten(), Dense(256, 'relu'), Dense(128, 'relu'), Dense(10, 'softmax')])
engine_sequential.build((None, 28, 28))
print("1. The engine's Sequential:")
engine_sequential.summary(print)

inputs = Input((28, 28))
x = Flatten()(inputs)
x = Dense(256, activation="relu")(x)
x = Dense(128, activation="relu")(x)
engine_functional = Model(inputs, Dense(10, activation="softmax")(x))
for source, target in zip(engine_sequential.trainable_variables, engine_functional.trainable_variables, strict=True):
    target.assign(source)
print("\n2. The engine's functional Model, the same weights copied in:")
engine_functional.summary(print)

# %% [markdown]
# Keras's twins of both, built by `engine.compare.keras_twin` with the same weights copied in.

# %%
keras_sequential = keras_twin.sequential_twin(engine_sequential)
print("3. Keras's Sequential, the same weights copied in:")
keras_sequential.summary(print_fn=print)
keras_functional = keras_twin.functional_twin(engine_functional)
print("\n4. Keras's Functional model (keras.Input, layers called on tensors, keras.Model), same weights:")
keras_functional.summary(print_fn=print)

# %%
images = tf.random.stateless_uniform([64, 28, 28], seed=[0, 0])  # stand-ins for 64 images in [0, 1)
reference = engine_sequential(images).numpy()
print(f"On the same 64 images, starting from the same {engine_sequential.count_params():,} weights:")
for name, model in [("engine functional Model", engine_functional), ("keras Sequential", keras_sequential),
                    ("keras Functional", keras_functional)]:
    difference = float(np.max(np.abs(np.asarray(model(images)) - reference)))
    print(f"  {name:<24} {model.count_params():,} parameters, max |output - engine Sequential's| = {difference:.2e}")
print("(float32 rounding: the four compute the same function.)")

# %% [markdown]
# What the untrained network says about a real image: ten probabilities that sum to 1, nearly
# uniform before any training. All four models give this same picture.

# %%
from engine.run import plots
from engine.tour import course

image = course.training_set()[0][0]  # [28, 28]
probabilities = engine_sequential(image[None]).numpy()[0]  # [10]
plots.plot_prediction(image, probabilities, course.fashion_mnist().class_names, course.path("models_prediction.png"),
                      title=f"untrained: probabilities sum to {probabilities.sum():.4f}")
course.show(course.path("models_prediction.png"))

# %% [markdown]
# ## 1. Tensors
#
# A tensor is an n-dimensional array of one dtype. Its **rank** is how many axes it has, its
# **shape** the size of each. A model only ever sees tensors: a batch of 32 Fashion-MNIST images
# is a rank-3 tensor of shape `[32, 28, 28]`, its labels a rank-1 tensor of shape `[32]`, the
# loss a rank-0 scalar.

# %%
import tensorflow as tf

examples = [
    ("tf.constant(3.0)", tf.constant(3.0), "a scalar, like a batch's loss"),
    ("tf.range(6.0)", tf.range(6.0), "a vector, like one example's 6 features"),
    ("tf.reshape(tf.range(24.0), [6, 4])", tf.reshape(tf.range(24.0), [6, 4]),
     "a matrix: 6 examples (rows) x 4 features (columns), what a Dense layer takes"),
    ("tf.zeros([4, 4, 2])", tf.zeros([4, 4, 2]), "4 x 4 pixels x 2 channels, or 4 images of 4 x 2"),
]
for code, tensor, meaning in examples:
    print(f"{code}  ->  rank {tensor.shape.rank}, shape {tensor.shape.as_list()}, "
          f"dtype {tensor.dtype.name}: {meaning}")
    if tensor.shape.num_elements() <= 24:
        print(tensor.numpy())

# %% [markdown]
# Indexing removes an axis; reshaping keeps the numbers and regroups them. The engine's
# `Flatten` turns `[batch, 28, 28]` into `[batch, 784]` by a reshape.

# %%
cube, matrix = tf.zeros([4, 4, 2]), tf.reshape(tf.range(24.0), [6, 4])
print(f"tf.zeros([4, 4, 2])[0] has shape {cube[0].shape.as_list()}, [0, 0] has shape {cube[0, 0].shape.as_list()}, "
      f"[0, 0, 0] has shape {cube[0, 0, 0].shape.as_list()}")
shapes = [[6, 4], [4, 6], [24], [2, 3, 4]]
print("Reshaping the 24 numbers:", " -> ".join(str(tf.reshape(matrix, shape).shape.as_list()) for shape in shapes))

# %% [markdown]
# An image is a rank-2 tensor of pixel values, a batch of them rank 3. Here are the first eight
# Fashion-MNIST training images, `images[:8]` of shape `[8, 28, 28]`, each drawn from its `[28, 28]` slice.

# %%
from engine.run import plots
from engine.tour import course

images, labels = course.training_set()
batch = tf.constant(images[:8])  # [8, 28, 28]
names = course.fashion_mnist().class_names
print(f"batch: rank {batch.shape.rank}, shape {batch.shape.as_list()}; batch[0]: shape {batch[0].shape.as_list()}, "
      f"values in [{float(tf.reduce_min(batch)):.1f}, {float(tf.reduce_max(batch)):.1f}]")
plots.plot_images([batch[i].numpy() for i in range(8)], [f"[{i}] {names[labels[i]]}" for i in range(8)],
                  course.path("tensors_batch.png"), title="batch[i]: eight [28, 28] slices of one [8, 28, 28] tensor")
course.show(course.path("tensors_batch.png"))

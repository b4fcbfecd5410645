# %% [markdown]
# ## 3. The same computation as a graph
#
# A graph is described first and run afterwards, as often as needed. TensorFlow 2 builds graphs
# by tracing: `tf.function` runs the Python function once with symbolic tensors and records every
# op into a graph, which then runs from C++ without Python (the engine's `--mode=graph`). The
# graph is also what XLA compiles and what TensorBoard draws (`python -m engine.tour.graph_picture`
# draws the training step's).

# %%
import numpy as np
import tensorflow as tf


@tf.function
def mean_and_sum(x):
    return tf.reduce_mean(x), tf.reduce_sum(x)


concrete = mean_and_sum.get_concrete_function(tf.TensorSpec([6, 4], tf.float32, name="x"))
operations = concrete.graph.get_operations()
print(f"Tracing it for a [6, 4] float32 input gives a graph of {len(operations)} ops (name: type), nothing computed yet:")
for op in operations:
    print(f"  {op.name}: {op.type}")
values = np.arange(24, dtype=np.float32).reshape(6, 4)
mean, total = concrete(tf.constant(values))
print(f"Running the graph on x = 0..23: mean {mean.numpy()}, sum {total.numpy()}")

# %% [markdown]
# `x` is the input; the Consts hold the axes to reduce over; the Identitys mark the outputs.
#
# TensorFlow 1 made you do both steps by hand: build a `tf.compat.v1.Graph` of placeholders and
# ops, then run it in a `Session` that feeds the placeholders.

# %%
graph = tf.compat.v1.Graph()
with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, shape=[6, 4], name="x")
    mean_op, sum_op = tf.reduce_mean(x, name="mean"), tf.reduce_sum(x, name="sum")
print(f"built: {mean_op} and {sum_op}: symbols with a shape, no value")
print(f"graph ops: {', '.join(f'{op.name} ({op.type})' for op in graph.get_operations())}")
with tf.compat.v1.Session(graph=graph) as session:
    mean_value, sum_value = session.run([mean_op, sum_op], feed_dict={x: values})
print(f"session.run([mean, sum], feed_dict={{x: 0..23}}) -> mean {mean_value}, sum {sum_value}")

# %% [markdown]
# A whole training step is a graph too. `engine.tour.step_graph` traces the engine's
# `train_step` for a small model and draws its ops grouped as a reader thinks of them: the
# layers' forward pass, the loss, the gradients (the same layers backwards) and the update.

# %%
from engine.tour import course, step_graph
from layers import mlp

tf.random.set_seed(course.SEED)
if step_graph.can_draw():
    drawn = step_graph.draw_training_step(mlp((16,), 10), (28, 28), course.path("graph"), formats=("png",))
    print(f"one training step of a 784-16-10 model: {drawn['png']}, and {drawn['tensorboard']} for TensorBoard's Graphs tab")
    course.show(drawn["png"])
else:  # the picture needs Graphviz; the DOT file and the TensorBoard graph do not
    drawn = step_graph.draw_training_step(mlp((16,), 10), (28, 28), course.path("graph"), formats=())
    print(f"skipped the picture: Graphviz's dot is not installed (apt-get install graphviz); "
          f"wrote {drawn['dot']} and {drawn['tensorboard']} for TensorBoard's Graphs tab")

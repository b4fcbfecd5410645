# %% [markdown]
# ## 2. Eager execution
#
# TensorFlow 2's default: each op runs when its line runs and returns a value. No graph is
# built and nothing waits for a session: `tf.reduce_mean(x)` is a number at once, so a model can
# be debugged with `print()` and pdb. The price is speed: every op goes back through Python (the
# engine's `--mode=eager`; see `engine/execution.py`).

# %%
import tensorflow as tf

x = tf.reshape(tf.range(24.0), [6, 4])  # rows [0 1 2 3], [4 5 6 7], ..., [20 21 22 23]
print(f"tf.executing_eagerly() -> {tf.executing_eagerly()}: each line below runs immediately.")
results = [
    ("tf.reduce_mean(x)", tf.reduce_mean(x), "the mean of all 24 numbers, (0 + 23) / 2"),
    ("tf.reduce_sum(x)", tf.reduce_sum(x), "their sum, 24 * 11.5"),
    ("tf.reduce_sum(x, axis=0)", tf.reduce_sum(x, axis=0), "sums down the 6 rows: one per column, shape [4]"),
    ("tf.reduce_mean(x, axis=1)", tf.reduce_mean(x, axis=1), "means across each row: one per example, shape [6]"),
]
for code, value, meaning in results:
    print(f"{code} = {value.numpy()}   ({meaning})")
print(f"The results are {type(results[0][1]).__name__}s holding their values; .numpy() hands them to NumPy.")

# %% [markdown]
# The same reductions as pictures (darker is smaller): `x`, its column sums (`axis=0` reduces the
# 6 rows away) and its row means (`axis=1` reduces the 4 columns away).

# %%
from engine.run import plots
from engine.tour import course

plots.plot_images([x.numpy(), tf.reduce_sum(x, axis=0).numpy()[None, :], tf.reduce_mean(x, axis=1).numpy()[:, None]],
                  ["x  [6, 4]", "reduce_sum(x, axis=0)  [4]", "reduce_mean(x, axis=1)  [6]"],
                  course.path("eager_reductions.png"), title="Reducing along an axis removes it")
course.show(course.path("eager_reductions.png"))

# %% [markdown]
# A loss is exactly this: `tf.reduce_sum(per_example) / batch_size` (`engine/losses.py`).

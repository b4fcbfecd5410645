# %% [markdown]
# ## 6. The backward pass, by hand
#
# The tape of the last section played the forward pass backwards for us. Here is what it
# computed, written out: the chain rule, one layer at a time, from the loss down. For the
# reference network, with h0 the flattened images and B the batch size,
#
#     h1 = relu(h0 W1 + b1)     h2 = relu(h1 W2 + b2)     z = h2 W3 + b3     L = mean_i -log softmax(z_i)[y_i]
#
# the gradient flows back as
#
#     delta3 = dL/dz  = (softmax(z) - onehot(y)) / B            the loss and the softmax together
#     dW3 = h2^T delta3      db3 = sum_i delta3      dL/dh2 = delta3 W3^T
#     delta2 = dL/dh2 * [h2 > 0]                                  relu lets the gradient through active units
#     dW2 = h1^T delta2      db2 = sum_i delta2      dL/dh1 = delta2 W2^T
#     delta1 = dL/dh1 * [h1 > 0]      dW1 = h0^T delta1      db1 = sum_i delta1
#
# Each line is a layer's `backward`, beside its forward in `layers/dense.py`; relu's mask is in
# `engine/activations.py`, the first line in `engine/losses.py`. The forward pass keeps each
# layer's inputs and outputs for them (`kept`). Below, one batch goes through those rules in
# reverse order, and the result is compared with the tape's.

# %%
import numpy as np
import tensorflow as tf

from engine import gradients, losses
from engine.tour import course
from layers import mlp

images, labels = course.training_set()
tf.random.set_seed(course.SEED)
model = mlp((256, 128), 10)  # Flatten -> Dense 256 relu -> Dense 128 relu -> Dense 10 softmax
x, y = tf.constant(images[:32]), tf.constant(labels[:32])
loss_fn = losses.sparse_categorical_crossentropy

logits, kept = model.forward_logits(x)  # [32, 10], and each layer's (inputs, outputs)
delta = losses.output_loss_backward(loss_fn, y, logits, model.output_activation)  # (softmax(z) - onehot(y)) / 32
flatten, dense_1, dense_2, output = model.layers
d_h2, (d_w3, d_b3) = output.backward_logits(kept[3], delta)  # dW3 = h2^T delta3, db3, dL/dh2 = delta3 W3^T
d_h1, (d_w2, d_b2) = dense_2.backward(kept[2], d_h2)  # delta2 = dL/dh2 * [h2 > 0], then the same three
d_h0, (d_w1, d_b1) = dense_1.backward(kept[1], d_h1)
d_images, _ = flatten.backward(kept[0], d_h0)  # the images' gradient, back to [32, 28, 28]
by_hand = [d_w1, d_b1, d_w2, d_b2, d_w3, d_b3]

loss, _, by_tape = gradients.tape_gradients(model, loss_fn, x, y)
print(f"loss {float(loss):.4f}; dL/dlogits {delta.shape}, dL/dimages {d_images.shape}")
print(f"{'variable':<18} {'shape':<12} {'|by hand - by tape|':>20} {'|gradient|':>11}")
for variable, hand, tape in zip(model.trainable_variables, by_hand, by_tape):
    print(f"{variable.name:<18} {str(tuple(variable.shape)):<12} {float(tf.reduce_max(tf.abs(hand - tape))):>20.1e} "
          f"{float(tf.norm(hand)):>11.4f}")

# %% [markdown]
# The two agree to float32 rounding (a few 1e-9): the same derivatives, summed in another order.
# `Trainer(..., gradients="manual")` (and `python train.py --gradients=manual`) trains with
# `engine.gradients.manual_gradients`, which is the cell above as a loop over the layers.
#
# Agreeing with the tape is not proof: both could be wrong the same way. The proof is numerical.
# Nudge one weight up and down by h and watch the loss: `(L(w + h) - L(w - h)) / 2h` is the
# derivative, needing no rule at all. `engine.gradient_check` does it for random entries of every
# weight, in float64 (in float32 the loss's rounding would drown the difference), and reports
# CS231n's relative error `|a - n| / (|a| + |n|)`: about 1e-9 here means right; 1e-2 would mean wrong.

# %%
from engine.gradient_check import check_model, table

tf.random.set_seed(course.SEED)
model_64 = mlp((256, 128), 10, dtype="float64")  # the same network in float64, for the check
x_64 = tf.cast(x, tf.float64)
checks = {way: check_model(model_64, loss_fn, x_64[:16], y[:16], way, entries=10) for way in ("tape", "manual")}
print("manual gradients against central differences:")
print(table(checks["manual"]))
print(f"worst relative error: tape {max(c.max_relative_error for c in checks['tape']):.1e}, "
      f"manual {max(c.max_relative_error for c in checks['manual']):.1e}")

# %%
from engine.run import plots

names = [c.name.split(":")[0] for c in checks["manual"]]
errors = {way: [c.max_relative_error for c in found] for way, found in checks.items()}
plots.plot_gradient_check(errors, names, course.path("gradient_check.png"),
                          title="Largest relative error of 10 entries per tensor, float64")
course.show(course.path("gradient_check.png"))

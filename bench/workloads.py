"""What the benchmarks run: the reference model, trained by the engine and by tf.keras, in every setting.

A *setting* is one way to run the same training: the engine in a mode with `steps_per_execution`
K, or Keras compiled one way. A *step runner* calls a setting's compiled function K steps at a
time and forces the result (`.numpy()`), so `runner(calls)` returns only when the work is done:

- `EngineSteps`: `Trainer.make_train_function`'s call, the one `Trainer.fit` makes once per K steps, on
  the data held as tensors and [K, batch] index blocks, as `fit` feeds it.
- `KerasSteps`: `model.train_function`, the function `keras.Model.fit` calls once per
  `steps_per_execution` steps, on a `tf.data` pipeline built the way `fit` builds one from arrays.

Both leave out only their `fit`'s once-per-epoch set-up, which the first-epoch figures include.
"""

import dataclasses
import functools
import itertools
import os
from typing import Iterator, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from engine import execution, losses, optimizers  # noqa: E402
from engine.compare import keras_twin  # noqa: E402
from engine.data import loading  # noqa: E402
from engine.training import Trainer  # noqa: E402
from layers import mlp  # noqa: E402

HIDDEN = (256, 128)  # the reference model: Flatten -> Dense(256) -> Dense(128) -> Dense(10)
BATCH_SIZE = 32
LEARNING_RATE = 0.01
GRAPH_BEST_K = 16  # graph mode's best K measured on a 2-core CPU: ~900 steps/s, against ~400 at K=1
FUSED_K = 64  # the K of xla-K64 and keras-jit-spe64


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way to run the training: `side` "engine" (mode eager/graph/xla) or "keras"
    (mode default/eager/jit/jit-spe), K steps per compiled call; the engine's gradients by "tape"
    or "manual" (engine/gradients.py)."""

    name: str
    side: str
    mode: str
    steps_per_execution: int = 1
    gradients: str = "tape"


ENGINE_SETTINGS = (
    Setting("eager", "engine", "eager"),
    Setting("graph-K1", "engine", "graph"),
    Setting(f"graph-K{GRAPH_BEST_K}", "engine", "graph", GRAPH_BEST_K),
    Setting("xla-K1", "engine", "xla"),
    Setting(f"xla-K{FUSED_K}", "engine", "xla", FUSED_K),
)
KERAS_SETTINGS = (
    Setting("keras-default", "keras", "default"),  # compile()'s defaults (jit_compile="auto")
    Setting("keras-eager", "keras", "eager"),  # run_eagerly=True
    Setting("keras-jit", "keras", "jit"),  # jit_compile=True
    Setting(f"keras-jit-spe{FUSED_K}", "keras", "jit-spe", FUSED_K),  # jit_compile=True, steps_per_execution=K
)
# The backward pass written out against the tape, in the compiled modes (bench.report times each pair
# in interleaved rounds).
GRADIENT_PAIRS = tuple((Setting(f"{mode}-K{k}", "engine", mode, k), Setting(f"{mode}-K{k}-manual", "engine", mode, k,
                                                                            "manual"))
                       for mode in ("graph", "xla") for k in (1, FUSED_K))
SETTINGS = {s.name: s for s in ENGINE_SETTINGS + KERAS_SETTINGS + tuple(s for pair in GRADIENT_PAIRS for s in pair)}
_KERAS_COMPILE = {"default": {}, "eager": {"run_eagerly": True}, "jit": {"jit_compile": True},
                  "jit-spe": {"jit_compile": True}}


@functools.lru_cache(maxsize=1)
def load_data() -> loading.ImageClassificationData:
    """Full Fashion-MNIST (60k train, 10k test, float32 [N, 28, 28]), loaded once per process."""
    return loading.load("fashion_mnist", log=lambda line: None)


def layer_sizes(image_shape: Sequence[int] = (28, 28), hidden: Sequence[int] = HIDDEN,
                classes: int = 10) -> tuple:
    """(784, 256, 128, 10): the width of every layer's input and of the output."""
    return (int(np.prod(image_shape)), *hidden, classes)


def train_flops_per_step(batch_size: int, sizes: Sequence[int] = layer_sizes()) -> int:
    """FLOPs of one training step of the Dense stack `sizes` (`engine.execution.dense_train_flops`
    gives the formula): 32.2 MFLOP for the reference model at batch 32."""
    return execution.dense_train_flops(batch_size, sizes)


def eval_flops_per_example(sizes: Sequence[int] = layer_sizes()) -> int:
    """Forward only: 2 sum_l in_l out_l = 469,504 for the reference model."""
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def engine_trainer(setting: Setting, seed: int = 0) -> Trainer:
    """A fresh, built reference model in the engine, trained by SGD in `setting`."""
    tf.random.set_seed(seed)
    model = mlp(HIDDEN, 10)
    model.build((None, 28, 28))
    return Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(LEARNING_RATE),
                   setting.mode, setting.steps_per_execution, setting.gradients)


def keras_model(setting: Setting, seed: int = 0) -> keras.Model:
    """The reference model in tf.keras, compiled for `setting` (SGD, sparse cross-entropy, accuracy)."""
    keras.utils.set_random_seed(seed)
    model = keras_twin.reference_mlp(HIDDEN, 10)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"],
                  steps_per_execution=setting.steps_per_execution, **_KERAS_COMPILE[setting.mode])
    return model


def steady_blocks(num_examples: int, batch_size: int, steps_per_execution: int,
                  seed: int = 0) -> Iterator[np.ndarray]:
    """Endless int32 [K, batch] index blocks: the full batches of one shuffled epoch after another.

    Only full batches and full blocks, so a timed run never meets a new shape (XLA would compile).
    """
    def batches():
        for epoch in itertools.count(1):
            order = np.random.default_rng([seed, epoch]).permutation(num_examples).astype(np.int32)
            yield from order[:num_examples // batch_size * batch_size].reshape(-1, batch_size)
    rows = batches()
    while True:
        yield np.stack([next(rows) for _ in range(steps_per_execution)])


def index_gather_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """What `keras.Model.fit` builds from arrays (its ArrayDataAdapter): shuffled indices, batched,
    one gather per batch in parallel; endless, full batches only."""
    with tf.device("/CPU:0"):  # tf.data runs on the host; a function of it cannot capture a GPU tensor
        images, labels = tf.constant(images), tf.constant(labels)
    count = int(labels.shape[0])
    indices = (tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)
               .repeat().batch(batch_size, drop_remainder=True))
    return (indices.map(lambda index: (tf.gather(images, index), tf.gather(labels, index)),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def element_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """The textbook `tf.data` recipe, example by example; endless, full batches only.

    `cache` keeps the decoded examples after the first pass; the arrays are already in memory
    here, so it shows only that the recipe's caching costs nothing once warm.
    """
    return (tf.data.Dataset.from_tensor_slices((images, labels)).cache()
            .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


class EngineSteps:
    """Calls `trainer`'s compiled K-step function on the data held as tensors, as `fit` does."""

    def __init__(self, trainer: Trainer, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0):
        self.trainer = trainer
        self._train_function = trainer.make_train_function(images, labels, batch_size)
        self.images, self.labels = trainer.as_tensors(images, labels, batch_size)  # as fit holds them
        self.steps_per_call = trainer.steps_per_execution
        self._blocks = steady_blocks(int(self.labels.shape[0]), batch_size, self.steps_per_call, seed)

    def __call__(self, calls: int) -> float:
        """Runs `calls` K-step blocks; returns the last step's loss, read back (so all steps are done)."""
        for _ in range(calls):
            block_losses = self._train_function(self.images, self.labels, tf.constant(next(self._blocks)))
        return float(block_losses.numpy()[-1])


class EngineFedSteps:
    """The same compiled step (K=1) fed from a `tf.data` pipeline: each batch is passed as the
    whole data set with the block [[0, 1, ..., batch-1]], so no new trace is needed."""

    def __init__(self, trainer: Trainer, dataset: tf.data.Dataset, batch_size: int):
        if trainer.steps_per_execution != 1:
            raise ValueError(f"EngineFedSteps feeds one batch per call: expected K=1, got {trainer.steps_per_execution}")
        self.trainer, self.steps_per_call = trainer, 1
        self._batches = iter(dataset)
        self._block = tf.range(batch_size, dtype=tf.int32)[tf.newaxis]  # [1, batch]
        example_shape = tuple(dataset.element_spec[0].shape[1:])
        self._train_function = trainer.make_train_function(np.zeros((1, *example_shape), np.float32),
                                                           np.zeros(1, np.int32), batch_size)
        self._images_dtype = trainer.data_dtype  # what the compiled call takes (float32 but for bfloat16 graph)

    def __call__(self, calls: int) -> float:
        for _ in range(calls):
            images, labels = next(self._batches)
            block_losses = self._train_function(tf.cast(images, self._images_dtype), labels, self._block)
        return float(block_losses.numpy()[-1])


class KerasSteps:
    """Calls Keras's compiled `train_function` (K steps a call) on `index_gather_pipeline`.

    The model must have been through `fit` once: `fit` creates the optimizer's and the
    metrics' variables and `train_function` itself.
    """

    def __init__(self, model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0):
        if model.train_function is None:
            raise ValueError("KerasSteps needs a model that has been through fit once (to build train_function)")
        self.model, self.steps_per_call = model, model.steps_per_execution
        self._batches = iter(index_gather_pipeline(images, labels, batch_size, seed))

    def __call__(self, calls: int) -> float:
        for _ in range(calls):
            logs = self.model.train_function(self._batches)
        return float(logs["loss"])


def step_runner(setting: Setting, images: np.ndarray, labels: np.ndarray, batch_size: int = BATCH_SIZE,
                seed: int = 0) -> "EngineSteps | KerasSteps":
    """A fresh model in `setting` and its step runner. Keras's model first fits one block (its
    compile happens there); the engine's traces on the runner's first call."""
    if setting.side == "engine":
        return EngineSteps(engine_trainer(setting, seed), images, labels, batch_size, seed)
    model = keras_model(setting, seed)
    count = setting.steps_per_execution * batch_size
    model.fit(images[:count], labels[:count], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return KerasSteps(model, images, labels, batch_size, seed)

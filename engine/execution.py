"""Execution modes: the same Python step function run three ways.

- `eager`: plain Python. Every op is dispatched as the line runs: easy to debug with
  print and pdb, and slowest, because each of the step's ~40 ops pays Python and dispatch
  overhead.
- `graph`: `tf.function` traces the step once into a TensorFlow graph and then runs the
  graph from C++. Python runs only while tracing.
- `xla`: `tf.function(jit_compile=True)` also hands the graph to the XLA compiler, which
  fuses element-wise ops (bias add, relu, softmax) into few kernels.

The wrappers never change the math: tests check that all three give the same numbers.

`steps_per_execution` K puts K steps inside one compiled call (`run_steps`), so Python and the
call overhead are paid once per K steps; at K=1 the call holds the step alone (`run_one_step`).
A call never spans two epochs (`engine.batches.epoch_blocks`), so a K at least an epoch's steps
runs the whole epoch in one call.

`train.py`'s default K is chosen by the step's work (`steps_per_execution_for`), and where it was
measured to pay, each step's batch is cut into two shards that run side by side, one on each core
(`shards_for`; engine/gradients.py's `sharded`). From batch 1024 a float32 XLA step hands its dots to
the library JAX's XLA uses (`dot_library_for`).
"""

import functools
from typing import Callable, Optional, Sequence

import tensorflow as tf

MODES = ("eager", "graph", "xla")  # engine/run/config.py repeats them, to check a flag before TensorFlow loads
BFLOAT16_GRAPH_FROM_BATCH = 256  # `mode_for`: from this batch size bfloat16 runs faster in graph mode
FLOAT32_GRAPH_FROM_BATCH = 4096  # `mode_for`: from this batch size float32 does too, on an AVX-512 CPU
ONE_THREAD_BELOW_BATCH = 64  # `threads_for`: below this batch size a hyperthreaded CPU runs one thread per core
FLOPS_PER_CALL = 100e9  # `steps_per_execution_for`: the work of one compiled call, about a second on a 2-core CPU
STEPS_PER_CALL_AT_MOST = 2048  # `steps_per_execution_for`: however small the step
SHARDED_BATCHES = (240, 288)  # `shards_for`: the batch sizes, first to last, whose float32 XLA step ran faster in halves
BFLOAT16_SHARDED_BATCHES = (256, 1024)  # `shards_for`: the same for a bfloat16 graph step
YNNPACK_DOTS_FROM_BATCH = 1024  # `dot_library_for`: from this batch size a float32 XLA step's dots go to YNNPACK


def mode_for(batch_size: int, precision: str = "float32", avx512: bool = False) -> str:
    """The mode `train.py --mode=auto` (its default) runs: xla, except graph where TensorFlow's own
    MatMul (oneDNN) beats XLA's dot by more than XLA's fusion of the element-wise ops gains.

    `avx512`: the step runs on a CPU with AVX-512 (`engine.app.defaults.with_mode` says). Measured side by
    side on a 2-core Intel Xeon with AMX (bench/RESULTS.md, "The graph step on oneDNN"), with relu
    folded into oneDNN's matmul in graph mode (`engine.activations.relu`) and a bfloat16 model's
    data held in bfloat16 (`data_dtype`):

    - bfloat16 from batch 256: only TensorFlow's MatMul computes bfloat16 fast (on AMX or
      AVX512_BF16); XLA's CPU dot has no bfloat16 path. The graph step ran 1.4x the xla one at
      batch 256 (737 against 522 steps/s), 2.1x at 1024 and 2.9x at 4096. At batch 32, where the
      matmuls are small, XLA's fusion wins (2,074 against 1,212).
    - float32 from batch 4096 on AVX-512: there oneDNN's float32 kernels beat XLA's dot by enough,
      graph 1.03-1.11x xla over four runs. At 1024 the two were level (161-177 against 164-175
      steps/s); below, XLA led (527 against 371 at 256). Before relu was folded in, graph was level
      with xla at 4096 on an AMD EPYC with AVX-512 and 0.89x on one with AVX2 only, which keeps XLA.
    """
    if precision != "float32" and batch_size >= BFLOAT16_GRAPH_FROM_BATCH:
        return "graph"
    if precision == "float32" and avx512 and batch_size >= FLOAT32_GRAPH_FROM_BATCH:
        return "graph"
    return "xla"


def dense_train_flops(batch_size: int, sizes: Sequence[int]) -> int:
    """FLOPs (2 per multiply-add) of one training step of a Dense stack of widths `sizes`
    (the input's, every layer's output).

    For Dense layers l = 1..L with in_l inputs and out_l outputs and a batch of B:

        forward       2 B sum_l in_l out_l         (x @ W)
        weight grads  2 B sum_l in_l out_l         (dL/dW = x^T @ dL/dz)
        input grads   2 B sum_{l>=2} in_l out_l    (dL/dx = dL/dz @ W^T; the images need none)

    Biases, activations, the loss and the update are O(B sum out_l) or O(sum in_l out_l)
    and left out. Reference model: 2 B (2 * 234,752 + 34,048) = 1,007,104 B, 32.2 MFLOP at B=32.
    """
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * batch_size * (2 * sum(products) + sum(products[1:]))


def steps_per_execution_for(flops_per_step: float) -> int:
    """The steps per compiled call `train.py --steps_per_execution=0` (its default) runs: as many as
    hold FLOPS_PER_CALL of work, between 1 and STEPS_PER_CALL_AT_MOST. A call never spans two
    epochs (`engine.batches.epoch_blocks`), so a K above an epoch's steps runs the epoch in one call.

    Why, measured (bench/RESULTS.md, "The AMD EPYC with AVX-512 again"): for the reference model at
    batch 32 (32.2 MFLOP a step, so K = 2048 and the epoch's 1,875 steps are one call) the
    whole-epoch call ran 1.04x the 64-step one per round on a 2-core AMD EPYC with AVX-512
    (quartiles 1.02-1.06 over 21 rounds; 1.02-1.07x on the Intel Xeon with AMX), and one block shape
    an epoch means one XLA compilation instead of two (64 steps, then the last 19): the 30-epoch
    run took 27.8 s against 30.2 s. The work bound is what a call holds the run's machinery to:
    Ctrl-C, SIGTERM, the divergence guard and the progress bar act between calls, so a call must
    stay short whatever `--hidden` is. 100 GFLOP is 0.5-1.2 s at the 80-200 GFLOP/s a training
    step reaches on these CPUs (a 2048-step call of the reference model: 0.13 s at batch 1, 0.6 s
    at batch 32); a model of 2048 x 2048 hidden units at batch 32 (1.0 GFLOP a step) gets 98 steps,
    1.2 s a call at the 81 steps/s it ran on the AMD EPYC, where 2048 steps would hold Ctrl-C 25 s.
    """
    return max(1, min(STEPS_PER_CALL_AT_MOST, int(FLOPS_PER_CALL // max(flops_per_step, 1))))


def data_dtype(mode: str, compute_dtype: tf.DType) -> tf.DType:
    """The dtype `Trainer` holds a data set's images in, for a model computing in `compute_dtype`:
    float32, except bfloat16 in graph mode for a model that computes in bfloat16 throughout.

    A bfloat16 model casts its float32 inputs to bfloat16 as its first op, so holding the data set
    in bfloat16 changes no number (a cast of each value, done once instead of every step), and in
    graph mode it pays twice: each step's gather moves half the bytes and the cast is gone. Measured
    on the 2-core Intel Xeon with AMX (`python -m bench.graph_step`), the bfloat16 graph step ran
    1.13x faster for it at batch 1024 (1.27x with relu on its kernel too). XLA fuses the cast into
    the gather anyway, and gathers bfloat16 rows more slowly than float32 ones: its step ran 0.64x
    as fast at batch 32 with the data set in bfloat16, so XLA keeps it in float32.
    """
    if mode == "graph" and compute_dtype == tf.bfloat16:
        return tf.bfloat16
    return tf.float32


def threads_for(batch_size: int, cores: int, logical_cpus: int) -> int:
    """The threads inside one op (TensorFlow's intra-op pool) `train.py --threads=0`, its default,
    gives a step on the CPU: one per physical core below batch 64 where the logical CPUs are
    hyperthreads sharing cores, else 0, TensorFlow's own choice (one per logical CPU).

    Why, measured side by side (bench/RESULTS.md, "Threads per op: by the cores, not the CPUs"):
    at batch 32 the step's largest matmul is 32 x 784 x 256, microseconds of one core's work. Two
    hyperthreads share one core's vector units, so splitting the step's ops between them buys no
    arithmetic, only hand-over: on a 2-vCPU Intel Xeon guest (AVX-512; the usual two hyperthreads
    of one core) one thread ran the XLA step 1.10x faster than two. Two real cores are two sets of
    vector units: on a 2-core AMD EPYC (AVX2, one thread per core) one thread ran it at 0.68x.
    From batch 64 the products are large enough to share, and TensorFlow's pool won on both. A
    process-wide setting, fixed before TensorFlow runs its first op (`use_threads`); on a GPU or
    TPU it does not apply. `cores` and `logical_cpus` are what this process may run on
    (engine/run/devices.py's `cpu_topology`).
    """
    if batch_size < ONE_THREAD_BELOW_BATCH and 0 < cores < logical_cpus:
        return cores
    return 0


def shards_for(batch_size: int, mode: str, precision: str, cores: int, logical_cpus: int) -> int:
    """The shards each step's batch is cut into (engine/gradients.py's `sharded`) by `train.py
    --shards=0`, its default: on a CPU of two or more real cores (one thread per core; hyperthreads
    share one core's vector units, so halves have no second core to go to: not measured), two for
    a float32 XLA step of a batch within SHARDED_BATCHES and for a bfloat16 graph step within
    BFLOAT16_SHARDED_BATCHES; else one, the batch whole.

    Why, measured side by side on a 2-core AMD EPYC with AVX-512 and AVX512_BF16 (bench/RESULTS.md,
    "Two halves of a step"; `python -m bench.report --peers`, `engine-xla-K64` beside
    `engine-xla-K64-2shards`, `engine-graph-K64-bf16` beside `engine-default-bf16`):
    - float32, XLA: halves ran 1.07-1.12x the whole batch from 240 to 272, 1.04x at 288; 0.94-1.00x
      at 32, 224, 320 and 1024. XLA's runtime runs them side by side, one on each core, and its dot
      suits 128 rows better there (the weight gradient of 784 x 256 x 256: 143 GFLOP/s, 160 with 128
      rows; `python -m bench.kernels`); elsewhere a half is too small, or the whole batch fills both.
    - bfloat16, graph: oneDNN's bfloat16 products are fast and the ops between them run one at a
      time (1.2 cores busy at 256, 1.7 at 1024); TensorFlow's executor runs two halves' ops side by
      side: 1.31-1.36x at 256, 1.07x at 512, 1.02x at 1024 (per round), 1.01x at 4096 (throwaway).
    """
    low, high = SHARDED_BATCHES if precision == "float32" else BFLOAT16_SHARDED_BATCHES
    halves_pay = 2 <= cores == logical_cpus and mode == ("xla" if precision == "float32" else "graph")
    return 2 if halves_pay and low <= batch_size <= high else 1


def dot_library_for(batch_size: int, mode: str, precision: str, shards: int) -> str:
    """The library XLA's CPU compiler hands the step's dots to under `train.py`'s defaults: "ynnpack"
    for a float32 XLA step of a whole batch (one shard) from YNNPACK_DOTS_FROM_BATCH, else "xla",
    XLA's own dot emitter. engine/run/xla_flags.py says how XLA is told (a process-wide flag).

    TensorFlow 2.21's XLA can hand a dot that contracts its left operand's last dimension (the
    forward products and the input gradients; not the weight gradients) to YNNPACK, as JAX 0.10's
    XLA does by default; it leaves the dots to its own emitter unless told. Measured side by side on
    the 2-core Intel Xeon with AMX (bench/RESULTS.md, "YNNPACK's dots at batch 1024"; `python -m
    bench.report --peers`, the default with and without the flag in interleaved rounds): at batch
    1024 the step ran 1.04-1.06x per round with YNNPACK's dots (median ratio of five runs of 9-25
    rounds each); at 512 0.99x and at 32 1.01x (nothing to take); at 256, where the step runs in two
    shards, 0.84x, so a sharded step keeps XLA's dots. At 4096 an AVX-512 CPU runs float32 in graph
    mode (`mode_for`), where XLA compiles nothing; in an XLA step there YNNPACK's dots ran level
    (0.995x) with XLA's own. Handing YNNPACK the element-wise ops and
    reductions too (`dot,eltwise,reduce`) ran 0.99x at 1024: only the dots are handed over.
    """
    if mode == "xla" and precision == "float32" and shards == 1 and batch_size >= YNNPACK_DOTS_FROM_BATCH:
        return "ynnpack"
    return "xla"


def use_threads(threads: int) -> int:
    """Sets TensorFlow's intra-op threads for this process (0: its default); returns those in effect.

    Only before TensorFlow's runtime starts: where it already runs (a notebook, a test, a program
    that trained before) the pool it has is kept, and returned.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # "Intra op parallelism cannot be modified after initialization."
        pass
    return tf.config.threading.get_intra_op_parallelism_threads()


def compile_step(
    step: Callable, mode: str, input_signature: Optional[Sequence[tf.TensorSpec]] = None
) -> Callable:
    """Wraps `step` for `mode`.

    With an `input_signature`, graph and XLA modes trace the step once, here, and return the
    traced `ConcreteFunction`. Calling it skips what a `tf.function` does on every call before
    running anything: bind the arguments to the signature and look the trace up in its cache.
    On the 2-core CPU, calling the concrete function makes a whole one-step training call 22-34%
    faster (`python -m bench.dispatch`); with a fixed signature one trace serves every call anyway.

    Args:
      step: a function of tensors, written for eager execution.
      mode: one of MODES.
      input_signature: the specs of `step`'s arguments. A batch axis of None lets the one
        trace serve full batches and the smaller last batch alike (graph mode); XLA still
        compiles once per distinct concrete shape: at most three per data set size (see
        `batches.execution_blocks`).

    Raises:
      ValueError: for an unknown mode.
    """
    if mode == "eager":
        return step
    if mode not in ("graph", "xla"):
        raise ValueError(f"Unknown execution mode {mode!r}: expected one of {', '.join(MODES)}")
    function = tf.function(step, input_signature=input_signature, jit_compile=mode == "xla")
    return function if input_signature is None else function.get_concrete_function()


def compile_steps(step: Callable, mode: str, steps_per_execution: int, example_shape: Sequence[int],
                  labels: tf.TensorSpec, autograph: bool = True, images_dtype: tf.DType = tf.float32) -> Callable:
    """`step(images, labels)` as the compiled block call `(images, labels, block) -> K losses` that
    `Trainer` makes: `run_steps` around it (`run_one_step` for K = 1), traced once for the whole data set.

    Every size is unknown in the signature (the data set's, the block's, the batch's), so one trace
    serves every data set, block and batch size; `labels` gives the labels' dtype and per-example shape,
    `images_dtype` the images' (`data_dtype`).
    With `autograph=False` the step is traced as written, without AutoGraph's rewrite of every
    function it calls (`engine.tracing` says when that is safe, and what it saves); the loop of
    `run_steps` around it is rewritten either way.
    """
    if not autograph:
        step = tf.autograph.experimental.do_not_convert(step)
    runner = run_steps if steps_per_execution > 1 else run_one_step
    signature = (tf.TensorSpec((None,) + tuple(example_shape), images_dtype), labels,
                 tf.TensorSpec((None, None), tf.int32))
    return compile_step(functools.partial(runner, step), mode, signature)


def run_steps(step: Callable, images: tf.Tensor, labels: tf.Tensor, batches: tf.Tensor) -> tf.Tensor:
    """Runs `step` once per row of `batches` ([K, batch] indices into the whole data set `images`,
    `labels`), in order; returns the K batch losses.

    This is what `steps_per_execution` compiles: K steps in one call, so Python and the call
    overhead are paid once per K steps. Under `tf.function` the `tf.range` loop stays one loop
    in the graph (not K copies of the step), so compile time does not grow with K; the whole
    data set stays where it is and each step gathers only its batch (measured on CPU: slicing a
    data set held in a variable instead made every XLA call copy it, ~2 steps/s).
    """
    count = tf.shape(batches)[0]
    losses = tf.TensorArray(tf.float32, size=count)
    for k in tf.range(count):
        index = batches[k]  # [batch]
        losses = losses.write(k, step(tf.gather(images, index), tf.gather(labels, index)))
    return losses.stack()


def run_one_step(step: Callable, images: tf.Tensor, labels: tf.Tensor, batches: tf.Tensor) -> tf.Tensor:
    """`run_steps` for blocks of one step ([1, batch]), as `Trainer` runs K=1: the step alone.

    With one step per call, the loop around it and the TensorArray of its losses are pure
    overhead: a few percent of a graph or XLA call on the 2-core CPU (`python -m bench.dispatch`).
    """
    index = batches[0]
    return step(tf.gather(images, index), tf.gather(labels, index))[tf.newaxis]

"""One framework in one process: the worker side of `bench/peers.py`.

    python -m bench.peer_worker FRAMEWORK      # started by bench/peers.py, spoken to over its stdin/stdout

Each (framework, setting) of the peers experiment runs in a process of its own, so that no
framework's thread pools, allocator or JIT share a process with another's. The worker imports
only its own framework (`RUNNERS`), reads Fashion-MNIST from the IDX files itself, then answers
requests, one pickled `(command, arguments)` tuple at a time:

    ("build", {"setting", "batch_size", "weights"})  -> seconds to build the model and its step (not compiled yet)
    ("train", {"epoch", "steps"})                    -> seconds, CPU seconds, mean loss, mean accuracy of that epoch's batches
    ("train_order", {"order"})                       -> mean loss, mean accuracy over the given batches
    ("evaluate", {})                                 -> test accuracy
    ("quit", {})

Every framework trains on the same batches: epoch e's order is the permutation the engine's own
`fit` draws (`engine.batches.epoch_batches`, seeded by (seed, e)), cut to full batches so that no
compiled step meets a second shape, and each step gathers its batch from the data in memory.
The pickled replies go out on a private copy of stdout; fd 1 itself is pointed at stderr, so a
framework that prints cannot corrupt the protocol. A failure is sent back as its traceback's text.
"""

import importlib
import os
import pickle
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from bench import peer_process
from engine.data import idx

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
RUNNERS = {"engine": "bench.peer_engine", "keras": "bench.peer_keras", "jax": "bench.peer_jax",
           "torch": "bench.peer_torch"}  # framework -> module with its `Runner` and `versions()`
SEED = 0
CPUS = "BENCH_PEER_CPUS"  # environment: keep the worker on this many of its CPUs (JAX's only thread cap)


def fashion_mnist(directory: Path = FASHION_MNIST) -> dict:
    """The four IDX files as `engine.data.loading` returns them: float32 images in [0, 1], int32 labels."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = idx.read_idx(directory / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32)  # [N, 28, 28]
        images /= 255.0  # in place, as loading does: the same float32 values to the last bit
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = idx.read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int32)
    return arrays


def epoch_order(num_examples: int, batch_size: int, epoch: int, steps: int = 0, seed: int = SEED) -> np.ndarray:
    """int32 [steps, batch]: epoch `epoch`'s shuffled batches (`engine.batches.epoch_batches`'s
    permutation), full batches only; the first `steps` of them when `steps` is given."""
    full = num_examples // batch_size
    steps = min(steps or full, full)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return order[:steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def serve(framework: str, requests, replies) -> None:
    """Answers requests until "quit" (or the controller goes away)."""
    module = importlib.import_module(RUNNERS[framework])
    data = fashion_mnist()
    reply(replies, "ready", {"versions": module.versions()})
    run = None
    while True:
        try:
            command, arguments = pickle.load(requests)
        except EOFError:
            return
        try:
            if command == "quit":
                return
            if command == "build":
                run = None  # the previous batch size's model goes before the next one is made
                start = time.perf_counter()
                run = module.Runner(arguments["setting"], arguments["batch_size"], arguments["weights"], data)
                reply(replies, "built", {"seconds": time.perf_counter() - start})
            elif command == "train":
                order = epoch_order(len(data["train_labels"]), run.batch_size, arguments["epoch"], arguments["steps"])
                start, cpu_start = time.perf_counter(), time.process_time()
                loss, accuracy = run.train(order)  # both read back: every step has finished
                reply(replies, "trained", {"seconds": time.perf_counter() - start, "steps": len(order),
                                           "cpu_seconds": time.process_time() - cpu_start,  # all the process's threads
                                           "loss": loss, "accuracy": accuracy})
            elif command == "train_order":
                loss, accuracy = run.train(np.asarray(arguments["order"], np.int32))
                reply(replies, "trained", {"loss": loss, "accuracy": accuracy})
            elif command == "evaluate":
                reply(replies, "evaluated", {"accuracy": run.evaluate()})
            else:
                reply(replies, "error", {"text": f"unknown command {command!r}"})
        except Exception:  # noqa: BLE001 - the controller reports it as this setting's one line
            reply(replies, "error", {"text": traceback.format_exc()})


def pin_cpus(count: str) -> None:
    """Keeps this process on the first `count` of the CPUs it may run on ("" or unset: all of them).
    Before the framework is imported: JAX sizes its thread pool by this set when it starts."""
    if count:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(count)])


def reply(replies, kind: str, body: dict) -> None:
    peer_process.send(replies, (kind, body))


def main() -> int:
    replies = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # anything printed from here on goes to stderr
    try:
        pin_cpus(os.environ.get(CPUS, ""))
        serve(sys.argv[1], sys.stdin.buffer, replies)
    except Exception:  # noqa: BLE001 - an import or data failure, before "ready"
        reply(replies, "error", {"text": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

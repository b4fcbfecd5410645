"""The training step's matmuls, one shape at a time, in each framework's best kernel.

    python -m bench.kernels                       # TensorFlow (graph, XLA), JAX, PyTorch: those installed
    python -m bench.kernels --batch_sizes=32,1024 --rounds=3 --out=bench/results

The question it answers (issue 21): where the engine does not lead a peer at a batch size, is it
the step around the matmuls, or the matmul kernels themselves? A step of the reference MLP is
eight matrix products; at batch B, with x the images and dz the gradient at a layer's output:

    forward       x[B,784] @ W1[784,256]     h1[B,256] @ W2[256,128]     h2[B,128] @ W3[128,10]
    weight grads  x^T @ dz1 -> [784,256]     h1^T @ dz2 -> [256,128]     h2^T @ dz3 -> [128,10]
    input grads   dz2 @ W2^T -> [B,256]      dz3 @ W3^T -> [B,128]

(2 B (2 * 234,752 + 34,048) FLOP, `workloads.train_flops_per_step`.) Each framework runs each
product `REPEATS` times inside one compiled loop — `tf.while_loop` under `tf.function` (graph
mode: TensorFlow's own MatMul, oneDNN), the same under `jit_compile=True` (XLA's CPU dot),
`jax.lax.fori_loop` under `jax.jit` (XLA's CPU dot, JAX's build), and PyTorch's `torch.matmul`
in a Python loop (eager; oneDNN/MKL; at its best thread count, 2 here) — each iteration on a
slice of a stacked input, so no compiler can hoist or merge the products, and the loop's own cost
is one slice per product. GFLOP/s = 2 M K N * REPEATS / seconds, the best of a few calls.

TensorFlow 2.21's XLA can also hand its dots to a library, by flags read once per process
(`XLA_FLAGS`), so `tf-xla-ynnpack` is a framework of its own here: YNNPACK takes the dots that
contract A's last dimension (forward and input-gradient products;
`--xla_cpu_experimental_ynn_fusion_type=dot`, what JAX 0.10's XLA does by default; the optimized
HLO, `--xla_dump_to`, shows `__ynn_fusion` for those). Routing every dot to oneDNN instead
(`--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot`, `__onednn_fusion` in
the HLO) ran the products alone at 0.53x XLA's own dot at batch 32 and 0.89x at 256 on the AMX
Xeon, and the chained step below died of SIGILL ("partition compile failed"), so it is not
measured here. `--xla_cpu_use_onednn=true` alone, `--xla_cpu_use_xnnpack=true` and
`--xla_cpu_experimental_xnn_fusion_type=dot` leave every dot to XLA's own emitter on this build.

Each framework runs in its own process (its thread pools and allocator alone), the processes one
after another in interleaved rounds (this machine's speed drifts within minutes), the median per
shape kept. "matmul-only steps/s" is 1 / (sum over the eight products of FLOP / GFLOP/s): the
step's speed if the matmuls were all it did, each timed alone. That is no bound: alone, a product
runs on a weight that never changes (a library may keep its repacked copy) in iterations nothing
ties together (they may overlap), and it pays the loop once per product; at batch 32 it comes out
above the chained figure. The last row is the bound that counts: the eight products chained as one step with SGD's update, each iteration needing the last
one's weights, the loop paid once per step (bench/matmul_step.py) — a framework's training step
on that dot runs no faster.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from absl import flags

from bench import kernel_timers
from engine.errors import ConfigError
from engine.run import cli, directories, program, writes, xla_flags

PROGRAM = "python -m bench.kernels"
REFERENCE_SIZES = (784, 256, 128, 10)  # the reference MLP's layer widths (bench/workloads.py's layer_sizes())
REPEATS = 64  # products per timed call: like the engine's K steps per call, the dispatch is shared
CALLS = 5  # timed calls per shape; the best is kept (the others meet the machine's noise)
QUICK_REPEATS, QUICK_CALLS = 8, 2  # --quick: a smoke run
FRAMEWORKS = ("tf-graph", "tf-xla", "tf-xla-ynnpack", "jax", "torch")
LABELS = {"tf-graph": "TensorFlow MatMul (graph, oneDNN)", "tf-xla": "TensorFlow under XLA",
          "tf-xla-ynnpack": "TensorFlow under XLA, dots to YNNPACK", "jax": "JAX jit (XLA)", "torch": "PyTorch eager"}
XLA_LIBRARY_FLAGS = {"tf-xla-ynnpack": xla_flags.FLAGS["ynnpack"]}

FLAGS = cli.new_flag_values()
flags.DEFINE_list("batch_sizes", ["32", "256", "1024", "4096"], "Batch sizes whose step shapes are measured.",
                  flag_values=FLAGS)
flags.DEFINE_list("frameworks", list(FRAMEWORKS), f"Any of {', '.join(FRAMEWORKS)} (those not installed are skipped).",
                  flag_values=FLAGS)
flags.DEFINE_integer("rounds", 3, "Interleaved rounds: each framework's process runs once per round.", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("out", None, "Directory for kernels.json and kernels.md (default: print only).", flag_values=FLAGS)
flags.DEFINE_string("worker", None, "Internal: measure one framework in this process and print JSON.",
                    flag_values=FLAGS)
flags.DEFINE_boolean("quick", False, "A smoke run: few repeats and calls (its numbers are not measurements).",
                     flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


def shapes(batch_size: int, sizes: Sequence[int] = REFERENCE_SIZES) -> List[Tuple[str, int, int, int, str]]:
    """The step's products as (name, M, K, N, layout): layout 'nn' is A[M,K] @ B[K,N], 'tn' is
    A[K,M]^T @ B[K,N] (a weight gradient), 'nt' is A[M,K] @ B[N,K]^T (an input gradient)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    found = [(f"forward {i + 1}", batch_size, fan_in, fan_out, "nn") for i, (fan_in, fan_out) in enumerate(layers)]
    found += [(f"weight grad {i + 1}", fan_in, batch_size, fan_out, "tn") for i, (fan_in, fan_out) in enumerate(layers)]
    found += [(f"input grad {i + 1}", batch_size, fan_out, fan_in, "nt")
              for i, (fan_in, fan_out) in enumerate(layers) if i > 0]
    return found


def measure(framework: str, batch_sizes: Sequence[int], repeats: int, calls: int) -> Dict:
    """{"version", "gflops": {"B/name": GFLOP/s}, "chained": {"B": steps/s}} for one framework, in
    this process: each product alone, then the eight chained as a step (`kernel_timers.chained_timer`)."""
    if framework.startswith("tf-"):
        timer, version = kernel_timers.tensorflow_timer(jit=framework != "tf-graph")
    else:
        timer, version = {"jax": kernel_timers.jax_timer, "torch": kernel_timers.torch_timer}[framework]()
    gflops = {}
    for batch_size in batch_sizes:
        for name, m, k, n, layout in shapes(batch_size):
            a, b = kernel_timers.operands(m, k, n, layout, repeats)
            seconds = timer(a, b, layout, repeats, calls)
            gflops[f"{batch_size}/{name}"] = 2 * m * k * n * repeats / seconds / 1e9
    chained_timer = kernel_timers.chained_timer(framework, REFERENCE_SIZES)
    chained = {str(batch_size): repeats / chained_timer(batch_size, repeats, calls) for batch_size in batch_sizes}
    return {"version": version, "gflops": gflops, "chained": chained}


def installed(framework: str) -> bool:
    import importlib.util

    module = "tensorflow" if framework.startswith("tf-") else framework
    return importlib.util.find_spec(module) is not None


def worker_environment(framework: str, environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment `framework`'s worker process starts with: this one's, quiet, and for the
    XLA-library variants their flags after the user's own XLA_FLAGS (XLA reads them at start-up)."""
    env = dict(os.environ if environ is None else environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL", "2")
    if framework in XLA_LIBRARY_FLAGS:
        env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS", ""), XLA_LIBRARY_FLAGS[framework]]))
    return env


def run_rounds(frameworks: Sequence[str], batch_sizes: Sequence[int], rounds: int, quick: bool,
               say=print) -> Dict:
    """Each framework in a process of its own, `rounds` interleaved rounds; the median per shape."""
    present = [framework for framework in frameworks if installed(framework)]
    found: Dict[str, List[Dict]] = {framework: [] for framework in present}
    for round_ in range(rounds):
        order = present[round_ % len(present):] + present[:round_ % len(present)]
        for framework in order:
            command = [sys.executable, "-m", "bench.kernels", f"--worker={framework}",
                       f"--batch_sizes={','.join(map(str, batch_sizes))}", *(["--quick"] if quick else [])]
            env = worker_environment(framework)
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                                    cwd=Path(__file__).resolve().parents[1])
            if result.returncode != 0:
                raise RuntimeError(f"bench.kernels --worker={framework} failed: {result.stderr.strip()[-2000:]}")
            found[framework].append(json.loads(result.stdout.strip().splitlines()[-1]))
            say(f"kernels: round {round_ + 1}/{rounds}, {framework} measured")
    return {**summarize(found, batch_sizes), "quick": quick}


def step_flops(batch_size: int) -> int:
    """FLOP of the eight products: `workloads.train_flops_per_step`, counted from `shapes`."""
    return sum(2 * m * k * n for _, m, k, n, _ in shapes(batch_size))


def summarize(found: Dict[str, List[Dict]], batch_sizes: Sequence[int]) -> Dict:
    results = {"frameworks": {}, "batch_sizes": list(batch_sizes)}
    for framework, runs in found.items():
        keys = runs[0]["gflops"]
        median = {key: statistics.median(run["gflops"][key] for run in runs) for key in keys}
        step = {}
        for batch_size in batch_sizes:
            seconds = sum(2 * m * k * n / (median[f"{batch_size}/{name}"] * 1e9)
                          for name, m, k, n, _ in shapes(batch_size))
            chained = statistics.median(run["chained"][str(batch_size)] for run in runs)
            step[str(batch_size)] = {"matmul_only_steps_per_second": 1 / seconds,
                                     "step_gflops": step_flops(batch_size) / seconds / 1e9,
                                     "chained_steps_per_second": chained,
                                     "chained_gflops": chained * step_flops(batch_size) / 1e9}
        results["frameworks"][framework] = {"version": runs[0]["version"], "gflops": median, "step": step,
                                            "rounds": len(runs)}
    return results


def markdown(results: Dict, machine: str) -> str:
    frameworks = list(results["frameworks"])
    lines = ["# The step's matmuls, per framework (`python -m bench.kernels`)", "", f"- {machine}",
             "- versions: " + ", ".join(f"{LABELS[f]} {results['frameworks'][f]['version']}" for f in frameworks),
             f"- a quick run: {QUICK_REPEATS} products per loop, best of {QUICK_CALLS} calls; not measurements"
             if results.get("quick") else
             f"- GFLOP/s of each product, {REPEATS} in one compiled loop, best of {CALLS} calls, median of "
             f"{min(r['rounds'] for r in results['frameworks'].values())} interleaved rounds", ""]
    for batch_size in results["batch_sizes"]:
        lines += [f"## Batch {batch_size}", "",
                  "| product | M x K x N | MFLOP | " + " | ".join(LABELS[f] for f in frameworks) + " |",
                  "|---|---|---:|" + "---:|" * len(frameworks)]
        for name, m, k, n, layout in shapes(batch_size):
            cells = [f"{results['frameworks'][f]['gflops'][f'{batch_size}/{name}']:.0f}" for f in frameworks]
            lines.append(f"| {name} ({layout}) | {m} x {k} x {n} | {2 * m * k * n / 1e6:.1f} | " + " | ".join(cells) + " |")
        steps = [results["frameworks"][f]["step"][str(batch_size)] for f in frameworks]
        lines.append("| **matmul-only steps/s** (GFLOP/s) | | | " + " | ".join(
            f"**{s['matmul_only_steps_per_second']:,.0f}** ({s['step_gflops']:.0f})" for s in steps) + " |")
        lines.append("| **the eight chained as a step, + update: steps/s** (GFLOP/s) | | | " + " | ".join(
            f"**{s['chained_steps_per_second']:,.0f}** ({s['chained_gflops']:.0f})" for s in steps) + " |")
        lines.append("")
    return "\n".join(lines)


def machine() -> str:
    from bench import peer_settings
    from engine.run import devices

    vector = devices.cpu_flags(("avx2", "avx512f", "avx512_vnni", "amx_tile"))
    return (f"CPU: {peer_settings.cpu_model()} ({os.cpu_count()} logical cores); vector extensions: "
            f"{', '.join(vector) or 'none listed'}; bfloat16: {', '.join(peer_settings.bfloat16_flags()) or 'none'}")


def kernels() -> int:
    """The experiment the parsed FLAGS describe (or, with --worker, one framework's part); returns 0."""
    try:
        batch_sizes = [int(size) for size in FLAGS.batch_sizes]
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1:
        raise ConfigError(f"--batch_sizes got {','.join(FLAGS.batch_sizes)}: expected positive integers, "
                          "comma-separated")
    unknown = [framework for framework in FLAGS.frameworks if framework not in FRAMEWORKS]
    if unknown or not FLAGS.frameworks:
        raise ConfigError(f"--frameworks got {','.join(unknown) or 'nothing'}: expected any of {', '.join(FRAMEWORKS)}")
    repeats, calls = (QUICK_REPEATS, QUICK_CALLS) if FLAGS.quick else (REPEATS, CALLS)
    if FLAGS.worker:
        print(json.dumps(measure(FLAGS.worker, batch_sizes, repeats, calls)), flush=True)
        return 0
    results = run_rounds(FLAGS.frameworks, batch_sizes, FLAGS.rounds, FLAGS.quick,
                         say=lambda line: print(line, flush=True))
    text = markdown(results, machine())
    print(text, flush=True)
    if FLAGS.out:
        directories.make_dirs(FLAGS.out, "--out")
        writes.write_json(os.path.join(FLAGS.out, "kernels.json"), {"machine": machine(), **results})
        writes.write_text(os.path.join(FLAGS.out, "kernels.md"), text + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, kernels, outputs=("out",))


if __name__ == "__main__":
    sys.exit(main())

"""The report's two views of one result dict (`bench.report.main`): a markdown page and a chart."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from engine.run import plots  # noqa: E402


def markdown(result: dict, chart_name: str) -> str:
    """The page: how it was made, then one table per section, then how to read them."""
    model, roof = result["model"], result["roofline"]
    lines = [f"# scratchflow vs tf.keras — {result['device']}{' (quick: smoke numbers only)' if result['quick'] else ''}",
             "",
             f"- command: `{result['command']}`",
             f"- date: {result['date']}",
             f"- TensorFlow {result['tensorflow']}, Keras {result['keras']}",
             f"- CPU: {result['cpu']} ({result['cpu_count']} logical cores)",
             f"- GPU: {', '.join(result['gpu']) or 'none'}{' (TF32 matmuls on)' if result['tf32'] else ''}",
             f"- model: Dense {' -> '.join(map(str, model['layer_sizes']))}, SGD(0.01), batch {result['batch_size']}: "
             f"{model['train_flops_per_step'] / 1e6:.1f} MFLOP per training step",
             f"- roofline: {roof['gflops']:.1f} GFLOP/s float32 matmul (best of n = "
             f"{', '.join(f'{n}: {g:.0f}' for n, g in roof['per_size'].items())})",
             "",
             f"## Settings at batch {result['batch_size']}",
             "",
             "| setting | K | steps/s | samples/s | × keras-default | × keras-best | GFLOP/s | of roofline "
             "| first epoch (s) | its overhead (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["settings"]:
        jit = f" (jit_compile={row['jit_compile']})" if row["setting"] == "keras-default" else ""
        lines.append(f"| {row['setting']}{jit} | {row['steps_per_execution']} | {row['steps_per_second']:.0f} "
                     f"| {row['samples_per_second']:.0f} | {row['vs_keras_default']:.2f} | {row['vs_keras_best']:.2f} "
                     f"| {row['gflops']:.2f} | {row['roofline_fraction']:.1%} | {row['first_epoch_s']:.2f} "
                     f"| {row['first_epoch_overhead_s']:+.2f} |")
    lines += ["", f"keras-best is {result['settings'][0]['keras_best']}. First epoch: "
              f"{result['settings'][0]['first_epoch_steps']} steps through the public `fit` of a fresh model "
              "(after a throwaway epoch on each side, so that no setting pays the process's start-up); "
              "its overhead is what it took beyond the same steps at the steady rate "
              "(tracing, compiling, first-touch; near 0 ± noise when nothing compiles).",
              *ceiling_section(result["ceiling"]),
              "", "## Input pipeline (graph-K1, batch 32)", "",
              "| feed | steps/s | samples/s | × tensors |", "|---|---:|---:|---:|"]
    lines += [f"| {row['feed']} | {row['steps_per_second']:.0f} | {row['samples_per_second']:.0f} "
              f"| {row['vs_tensors']:.2f} |" for row in result["input_pipeline"]]
    lines += ["", "## Batch-size sweep", "", "| batch | setting | samples/s | GFLOP/s | of roofline |",
              "|---:|---|---:|---:|---:|"]
    lines += [f"| {row['batch_size']} | {row['setting']} | {row['samples_per_second']:.0f} | {row['gflops']:.2f} "
              f"| {row['roofline_fraction']:.1%} |" for row in result["sweep"]]
    lines += gradients_section(result.get("gradients", []))
    lines += scaling_section(result["scaling"])
    lines += ["", f"![settings and sweep]({chart_name})", "",
              "## Method", "",
              "Steady state: after 2 untimed calls of the compiled K-step function (the first traces and "
              "compiles), a fixed number of steps timed up to a `.numpy()` of the last loss"
              f"{'' if result['budget']['repeats'] == 1 else '; the median of %d runs' % result['budget']['repeats']}. The engine's function is the compiled call of `Trainer.make_train_function` on the "
              "data held as tensors; Keras's is `model.train_function` (what `fit` calls per "
              "`steps_per_execution` steps) on a shuffled-index + gather `tf.data` pipeline like the one "
              "`fit` builds from arrays. Neither includes its `fit`'s once-per-epoch set-up; the first epoch does.",
              "",
              "FLOPs per training step of a Dense stack with B examples: forward 2B Σ in·out, weight gradients "
              "2B Σ in·out, input gradients of every layer but the first 2B Σ_{l≥2} in·out "
              "(`bench/workloads.py: train_flops_per_step`). Biases, activations, loss and update are left out.",
              ""]
    return "\n".join(lines)


def ceiling_section(rows: list) -> list:
    """The skeleton step's speed per mode (bench/ceiling.py), next to the engine's and Keras's."""
    lines = ["", "## Ceiling: the skeleton step", "",
             "Only the 8 matmuls, the 3 kernel updates and the batch gather of a training step, gradients "
             "written by hand (`bench/ceiling.py`): nothing any step of this model can skip. Run under XLA as "
             "the engine's xla-K64 runs, it shows what the arithmetic alone reaches on this machine. Each "
             "row's three settings were timed in interleaved rounds.", "",
             "| batch | run as | skeleton steps/s | × Keras | of roofline | engine steps/s | × Keras | of skeleton "
             "| Keras setting |", "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {row['batch_size']} | {row['engine_setting']} | {row['steps_per_second']:.0f} | {row['vs_keras']:.2f} "
              f"| {row['roofline_fraction']:.1%} | {row['engine_steps_per_second']:.0f} | {row['engine_vs_keras']:.2f} "
              f"| {row['engine_of_skeleton']:.0%} | {row['keras_setting']} |" for row in rows]
    return lines


def gradients_section(rows: list) -> list:
    """Manual gradients (each layer's backward rule) beside the tape's, per compiled setting."""
    if not rows:
        return []
    lines = ["", "## Manual gradients beside the tape (batch 32)", "",
             "The same step with its gradients from `tf.GradientTape` and from the backward pass written out "
             "(`Trainer(gradients=\"manual\")`), each pair timed in interleaved rounds.", "",
             "| mode | K | tape steps/s | manual steps/s | manual / tape |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {row['mode']} | {row['steps_per_execution']} | {row['tape_steps_per_second']:.0f} "
              f"| {row['manual_steps_per_second']:.0f} | {row['manual_vs_tape']:.2f} |" for row in rows]
    return lines


def scaling_section(scaling: dict) -> list:
    """Steps/s with 1 and 2 replicas (bench/scaling.py), and what such devices can show."""
    where = ("2 logical devices of one CPU" if scaling["logical_cpu"] else ", ".join(scaling["devices"]))
    lines = ["", "## Data-parallel scaling", "",
             f"MirroredStrategy on {where}; graph mode, K={scaling['steps_per_execution']}, global batch "
             f"{scaling['batch_size']} (split over the replicas), second epoch of {scaling['examples']} examples.", "",
             "| setting | replicas | steps/s | samples/s | × one device |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {row['setting']} | {row['replicas']} | {row['steps_per_second']:.1f} "
              f"| {row['samples_per_second']:.0f} | {row['vs_one_device']:.2f} |" for row in scaling["rows"]]
    if scaling["logical_cpu"]:
        lines += ["", "Logical CPU devices share the same cores, memory and thread pools: 2 replicas cannot be "
                  "faster than 1 here. The ratios measure the strategy's own cost (per-replica dispatch, the "
                  "gradient all-reduce, a distributed iterator per compiled call), not a speed-up; only separate "
                  "devices (GPUs, TPU cores, machines) can show one."]
    return lines


def chart(result: dict, path: Path) -> None:
    """Three panels: batch-32 steps/s per setting | sweep samples/s | sweep fraction of roofline."""
    figure, (bars, speed, roof) = plt.subplots(1, 3, figsize=(16, 4.5))
    rows = result["settings"]
    bars.barh([r["setting"] for r in rows], [r["steps_per_second"] for r in rows],
              color=["tab:blue" if r["side"] == "engine" else "tab:orange" for r in rows])
    bars.invert_yaxis()
    bars.set_xlabel(f"steps/s at batch {result['batch_size']} (steady state)")
    bars.grid(axis="x", alpha=0.3)
    for name in dict.fromkeys(r["setting"] for r in result["sweep"]):
        points = [r for r in result["sweep"] if r["setting"] == name]
        sizes = [r["batch_size"] for r in points]
        speed.plot(sizes, [r["samples_per_second"] for r in points], "o-", label=name)
        roof.plot(sizes, [r["roofline_fraction"] for r in points], "o-", label=name)
    sizes = sorted({r["batch_size"] for r in result["sweep"]})
    for axis, label in ((speed, "samples/s"), (roof, f"fraction of roofline ({result['roofline']['gflops']:.0f} GFLOP/s)")):
        batch_size_axis(axis, sizes, label)
    figure.suptitle(f"scratchflow vs tf.keras on {result['device']}: "
                    f"{', '.join(result['gpu']) or result['cpu']}{' (quick)' if result['quick'] else ''}")
    figure.tight_layout()
    plots.save(figure, str(path))


def batch_size_axis(axis, sizes, label: str, legend_size=None) -> None:
    """An axis over batch sizes, log2-spaced, each size labelled, with a grid and the legend."""
    axis.set_xscale("log", base=2)
    axis.set_xticks(sizes, [str(size) for size in sizes])
    axis.minorticks_off()
    axis.set_xlabel("batch size")
    axis.set_ylabel(label)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=legend_size)

"""The peers experiment's two views (`bench.peers.run` inside a report's result): a markdown page, a chart."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from bench import peers as peers_experiment  # noqa: E402
from bench import render  # noqa: E402
from engine.run import plots  # noqa: E402

FRAMEWORKS = {"engine": "scratchflow", "jax": "JAX/Flax", "torch": "PyTorch", "keras": "Keras"}


def markdown(result: dict, chart_name: str) -> str:
    """The page: the machine and versions, the parity check, a table per batch size, time to accuracy."""
    peers, roof = result["peers"], result["roofline"]
    versions = ", ".join(f"{name} {version}" for name, version in sorted(peers["versions"].items())
                         if isinstance(version, str))
    lines = [f"# scratchflow vs JAX/Flax, PyTorch, Keras — {result['device']}"
             f"{' (quick: smoke numbers only)' if result['quick'] else ''}", "",
             f"- command: `{result['command']}`", f"- date: {result['date']}", f"- {versions}",
             f"- CPU: {result['cpu']} ({result['cpu_count']} logical cores); bfloat16 instructions: "
             f"{', '.join(peers['bfloat16_flags']) or 'none (no bfloat16 settings measured)'}",
             f"- roofline: {roof['gflops']:.1f} GFLOP/s float32 matmul (best of n = "
             f"{', '.join(f'{n}: {g:.0f}' for n, g in roof['per_size'].items())})",
             "- workload: Dense 784-256-128-10 relu/softmax, the same Glorot-uniform weights, the same shuffled "
             "batches, SGD 0.01, loss and accuracy tracked; each setting in its own process; "
             f"{peers['budget']['rounds']} interleaved rounds of one epoch after a warm-up epoch", ""]
    lines += [f"- {name}: {reason}" for name, reason in peers["skipped"].items()]
    lines += ["", "## Same workload", "",
              "Loss of the first step and mean loss of the next 7, batch 32, from the same weights on the same "
              "batches (difference to the engine's default):", "",
              "| setting | precision | first-step loss | diff | next 7 steps | diff |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {row['setting']} | {row['precision']} | {row['first_loss']:.7f} | {row['first_loss_difference']:.1e} "
              f"| {row['next_loss']:.7f} | {row['next_loss_difference']:.1e} |" for row in peers["parity"]]
    for batch_size in sorted({row["batch_size"] for row in peers["throughput"]}):
        rows = [row for row in peers["throughput"] if row["batch_size"] == batch_size]
        lines += ["", f"## Batch {batch_size} ({rows[0]['steps']} steps per epoch)", "",
                  "| setting | steps/s (range) | samples/s | × best peer | GFLOP/s | of roofline | cores busy |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            name = f"{row['label']} (`{row['setting']}`)"
            if row["setting"].startswith("engine-default"):
                name += f": {row['mode']}, K={row['steps_per_execution']}"
                if row.get("threads"):
                    name += f", {row['threads']} thread(s) per op"
                if row.get("shards", 1) > 1:
                    name += f", {row['shards']} shards a step"
                if row.get("dots", "xla") != "xla":
                    name += f", dots on {row['dots']}"
            if "error" in row:
                lines.append(f"| {name} | failed: {row['error']} | | | | | |")
                continue
            ratio = f"{row['vs_best_peer']:.2f}" if "vs_best_peer" in row else "—"
            lines.append(f"| {name} | {row['steps_per_second']:,.0f} ({row['min']:,.0f}–{row['max']:,.0f}) "
                         f"| {row['samples_per_second']:,.0f} | {ratio} | {row['gflops']:.1f} "
                         f"| {row['roofline_fraction']:.1%} | {row['cores_busy']:.2f} |")
        best = next((row["best_peer"] for row in rows if "best_peer" in row), None)
        lines += ["", f"Best peer (float32): `{best}`." if best else "No peer measured."]
        for group in peers_experiment.same_programs(rows):
            lines += ["", f"Same program: {' and '.join(f'`{name}`' for name in group['settings'])} ran "
                      f"{' and '.join(f'{rate:,.1f}' for rate in group['steps_per_second'])} steps/s, "
                      f"{group['spread']:.1%} apart: this run's noise between processes, the size of a "
                      "difference this table cannot tell from none."]
        for row in peers_experiment.threads_not_held(rows):
            lines += ["", peers_experiment.threads_line(row).strip() + "."]
    lines += ["", "## Time to accuracy (batch 32)", "",
              "Each framework's fastest float32 setting at batch 32, in a fresh process (PyTorch's compile cache "
              "off), from the same weights; seconds of training (model and step built, compiled, every epoch; "
              "test evaluation and data loading excluded) until the test accuracy, evaluated after every epoch, "
              "first reaches:", "",
              "| setting | " + " | ".join(str(t) for t in peers["thresholds"])
              + " | first epoch, built and compiled (s) | epochs run | last test accuracy |",
              "|---|" + "---:|" * (len(peers["thresholds"]) + 3)]
    for row in peers["time_to_accuracy"]:
        if row["error"]:
            lines.append(f"| {row['setting']} | failed: {row['error']} |" + " |" * (len(peers["thresholds"]) + 2))
            continue
        cells = [f"{row['reached'][str(t)]['seconds']:.1f} s (epoch {row['reached'][str(t)]['epoch']})"
                 if str(t) in row["reached"] else f"not reached in {row['epochs_run']} epochs"
                 for t in peers["thresholds"]]
        first, last = ((f"{row['epochs'][0]['seconds']:.2f}", f"{row['epochs'][-1]['test_accuracy']:.4f}")
                       if row["epochs"] else ("—", "—"))
        lines.append(f"| {row['setting']} | " + " | ".join(cells) + f" | {first} | {row['epochs_run']} | {last} |")
    lines += ["", f"![samples/s against batch size]({chart_name})", ""]
    return "\n".join(lines)


def chart(result: dict, path: Path) -> None:
    """Samples/s and fraction of the roofline against batch size: per framework its best float32 setting
    at each batch size (solid) and its best bfloat16 one (dashed)."""
    rows = [row for row in result["peers"]["throughput"] if "error" not in row]
    sizes = sorted({row["batch_size"] for row in rows})
    figure, (speed, roof) = plt.subplots(1, 2, figsize=(13, 4.8))
    for framework, name in FRAMEWORKS.items():
        for precision, style in (("float32", "o-"), ("bfloat16", "s--")):
            best = [max((row for row in rows if row["framework"] == framework and row["precision"] == precision
                         and row["batch_size"] == size), key=lambda row: row["samples_per_second"], default=None)
                    for size in sizes]
            points = [(size, row) for size, row in zip(sizes, best) if row]
            if points:
                label = name if precision == "float32" else f"{name} bfloat16"
                speed.plot([s for s, _ in points], [r["samples_per_second"] for _, r in points], style, label=label)
                roof.plot([s for s, _ in points], [r["roofline_fraction"] for _, r in points], style, label=label)
    for axis, label in ((speed, "samples/s (best setting per framework)"),
                        (roof, f"fraction of the float32 roofline ({result['roofline']['gflops']:.0f} GFLOP/s)")):
        render.batch_size_axis(axis, sizes, label, legend_size=8)
    figure.suptitle(f"reference MLP on Fashion-MNIST, {result['cpu']}{' (quick)' if result['quick'] else ''}")
    figure.tight_layout()
    plots.save(figure, str(path))

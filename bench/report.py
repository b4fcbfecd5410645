"""One run that measures the engine against tf.keras side by side, and writes it down.

    python -m bench.report [--out=bench/results]    # the measurement bench/results/ and RESULTS.md hold
    python -m bench.report --quick                  # a smoke run, to runs/bench_quick/ (not committed)
    python -m bench.report --peers [--quick]        # instead: the engine beside JAX/Flax, PyTorch, Keras
                                                    # (bench/peers.py), written as <out>/peers.json, .md, .png

Measures, in order, printing one line per measurement:

1. The roofline: float32 matmul GFLOP/s, the best over a few square sizes (`measure.roofline`).
2. At batch 32, every engine setting and every Keras setting (`workloads.SETTINGS`): a fresh
   model's first epoch through the public `fit` (tracing and compiling included), then the same
   model's steady state: WARMUP_CALLS untimed calls of its compiled K-step function, then a
   fixed number of timed steps ending on a `.numpy()`. From these: steps/s, samples/s, the
   ratio to keras-default and to the best Keras setting, achieved GFLOP/s
   (steps/s x `workloads.train_flops_per_step`) and its fraction of the roofline, and the
   first epoch's overhead over the same steps at the steady rate (mostly compilation).
3. The ceiling (`bench/ceiling.py`): a skeleton step with only the matmuls and updates no step
   can skip, run as xla-K64 at batch 32 and 1024, each timed in interleaved rounds with the
   engine's xla-K64 and keras-jit-spe64: what the arithmetic alone reaches under XLA on this
   machine, and how close the engine's full step comes.
4. The input pipeline, graph-K1 at batch 32: data held as tensors (the engine's path) against
   two `tf.data` pipelines feeding the same compiled step.
5. A batch-size sweep of the best engine setting and keras-jit-spe64: samples/s and fraction of
   the roofline.
6. Manual gradients (the backward pass written out, engine/gradients.py) beside the tape, in graph
   and XLA at K=1 and K=64, each pair timed in interleaved rounds (`workloads.GRADIENT_PAIRS`).
7. Data-parallel scaling, 1 vs 2 replicas (`bench/scaling.py`, in its own process).

Writes `<out>/<device>.json`, `.md` and `.png`, `<device>` being "gpu" when TensorFlow sees one,
else "cpu". `--quick` shrinks every measurement (a test runs it: 3 min 21 s measured on the
shared 2-core machine); its numbers only show that the pipeline works, so by default it writes them to
runs/bench_quick/, which git ignores, never over the committed bench/results/.
"""

import dataclasses
import datetime
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from absl import flags

from engine.run import cli, directories, program, writes

PROGRAM = "python -m bench.report"
FLAGS = cli.new_flag_values()
flags.DEFINE_boolean("quick", False, "Shrink every measurement: a smoke run (about 3-4 minutes on two cores), "
                     "written to runs/bench_quick unless --out says otherwise.", flag_values=FLAGS)
flags.DEFINE_boolean("peers", False, "Run the peers experiment instead (bench/peers.py: the engine beside JAX/Flax, "
                     "PyTorch and Keras at batch 32-4096, time to accuracy); peers.json/.md/.png in --out.",
                     flag_values=FLAGS)
flags.DEFINE_list("peer_batch_sizes", [], "With --peers: only these batch sizes (default: 32, 256, 1024, 4096).",
                  flag_values=FLAGS)
flags.DEFINE_list("peer_settings", [], "With --peers: only these settings, by name (default: all; bench/peer_settings.py).",
                  flag_values=FLAGS)
flags.DEFINE_integer("peer_rounds", 0, "With --peers: interleaved rounds per batch size (0: the budget's).", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_integer("peer_tta_epochs", -1, "With --peers: the time-to-accuracy runs' epoch cap (0 skips them; -1: the "
                     "budget's).", lower_bound=-1, flag_values=FLAGS)
flags.DEFINE_string("out", None, "Directory for <device>.json/.md/.png (default: bench/results, or "
                    "runs/bench_quick with --quick).", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)

from engine import startup  # noqa: E402

startup.import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import ceiling, measure, peer_settings, peers, peers_render, render, scaling, workloads  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.run.directories import check_output_dir  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much each measurement runs."""

    epoch_examples: int  # the first epoch's size (and the data the steady state draws from)
    steps: int  # timed steps per compiled setting
    eager_steps: int  # timed steps for eager and keras-eager (~50 steps/s on a CPU)
    repeats: int  # timed runs per measurement; the median is reported
    roofline_sizes: dict  # device -> matrix sizes
    sweep_batch_sizes: tuple
    sweep_examples: int  # examples per timed sweep run (at least one K-step call)


FULL = Budget(60000, 1875, 300, 3, {"cpu": (256, 512, 1024, 2048), "gpu": (1024, 2048, 4096, 8192)},
              (32, 64, 128, 256, 512, 1024, 2048, 4096), 60000)
QUICK = Budget(2048, 192, 32, 1, {"cpu": (512, 1024), "gpu": (2048, 4096)}, (32, 128, 512), 4096)


_START = time.perf_counter()


def say(line: str) -> None:
    """One progress line, stamped with the seconds since start, flushed at once."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", flush=True)


def machine() -> dict:
    """Which device ran, and on what: device kind, GPU name, CPU model, versions, date, command."""
    gpus = tf.config.list_physical_devices("GPU")
    cpu = peer_settings.cpu_model()
    return {"device": "gpu" if gpus else "cpu",
            "gpu": [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus],
            "cpu": cpu, "cpu_count": os.cpu_count(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf32": bool(gpus) and tf.config.experimental.tensor_float_32_execution_enabled(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", "bench.report", *sys.argv[1:]])}


def settings_table(x: np.ndarray, y: np.ndarray, budget: Budget, roof: float) -> list:
    """Section 2: one row per setting at batch 32."""
    batch, rows = workloads.BATCH_SIZE, []
    flops = workloads.train_flops_per_step(batch)
    # A throwaway epoch on each side first: whichever setting came first would otherwise pay the
    # process's one-time start-up (autograph, Keras's first compile; ~1.5 s on a CPU) as "compiling".
    for name in ("graph-K1", "keras-default"):
        measure.first_epoch_seconds(workloads.SETTINGS[name], x[:4 * batch], y[:4 * batch], batch)
    for setting in workloads.ENGINE_SETTINGS + workloads.KERAS_SETTINGS:
        first, trained = measure.first_epoch_seconds(setting, x, y, batch)
        runner = (workloads.EngineSteps(trained, x, y, batch) if setting.side == "engine"
                  else workloads.KerasSteps(trained, x, y, batch))
        eager = setting.mode == "eager"
        steady = measure.steady_steps_per_second(runner, budget.eager_steps if eager else budget.steps, budget.repeats)
        rate, epoch_steps = steady["steps_per_second"], -(-len(y) // batch)
        row = {"setting": setting.name, "side": setting.side, "mode": setting.mode,
               "steps_per_execution": setting.steps_per_execution, "steady": steady,
               "steps_per_second": rate, "samples_per_second": rate * batch,
               "first_epoch_s": first, "first_epoch_steps": epoch_steps,
               "first_epoch_overhead_s": first - epoch_steps / rate,
               "gflops": rate * flops / 1e9, "roofline_fraction": rate * flops / 1e9 / roof}
        if setting.side == "keras":
            row["jit_compile"] = bool(trained.jit_compile)  # what "auto" resolved to
        else:
            row["data_device"] = runner.images.device
        rows.append(row)
        say(f"  {setting.name:<16} {rate:8.1f} steps/s  {rate * batch:9.0f} samples/s  "
            f"{row['gflops']:6.2f} GFLOP/s ({row['roofline_fraction']:.1%} of roofline)  "
            f"first epoch {first:6.2f} s ({row['first_epoch_overhead_s']:+.2f} s over steady)")
    default = next(r for r in rows if r["setting"] == "keras-default")["steps_per_second"]
    best = max((r for r in rows if r["side"] == "keras"), key=lambda r: r["steps_per_second"])
    for row in rows:
        row["vs_keras_default"] = row["steps_per_second"] / default
        row["vs_keras_best"] = row["steps_per_second"] / best["steps_per_second"]
        row["keras_best"] = best["setting"]
    return rows


def ceiling_rows(x: np.ndarray, y: np.ndarray, budget: Budget, roof: float) -> list:
    """Section 3: the skeleton step against the engine's setting and the Keras setting it is judged
    by, the three timed in interleaved rounds (`measure.interleaved_steps_per_second`)."""
    rows = []
    fused, fused_keras = f"xla-K{workloads.FUSED_K}", f"keras-jit-spe{workloads.FUSED_K}"
    for engine, keras_name, batch in ((fused, fused_keras, workloads.BATCH_SIZE), (fused, fused_keras, 1024)):
        setting = workloads.SETTINGS[engine]
        runners = {"skeleton": ceiling.SkeletonSteps(setting.mode, setting.steps_per_execution, x, y, batch),
                   "engine": workloads.step_runner(setting, x, y, batch),
                   "keras": workloads.step_runner(workloads.SETTINGS[keras_name], x, y, batch)}
        steps = budget.steps if batch == workloads.BATCH_SIZE else -(-budget.sweep_examples // batch)
        steady = measure.interleaved_steps_per_second(runners, steps, budget.repeats)
        rate = {name: result["steps_per_second"] for name, result in steady.items()}
        fraction = rate["skeleton"] * workloads.train_flops_per_step(batch) / 1e9 / roof
        rows.append({"engine_setting": engine, "keras_setting": keras_name, "batch_size": batch, "steady": steady,
                     "steps_per_second": rate["skeleton"], "engine_steps_per_second": rate["engine"],
                     "keras_steps_per_second": rate["keras"], "vs_keras": rate["skeleton"] / rate["keras"],
                     "engine_vs_keras": rate["engine"] / rate["keras"], "roofline_fraction": fraction,
                     "engine_of_skeleton": rate["engine"] / rate["skeleton"]})
        row = rows[-1]
        say(f"  batch {batch:4d} {engine:<9} skeleton {rate['skeleton']:7.1f} steps/s = x{row['vs_keras']:.2f} "
            f"{keras_name}, {fraction:.1%} of roofline; engine {rate['engine']:7.1f} = x{row['engine_vs_keras']:.2f}, "
            f"{row['engine_of_skeleton']:.0%} of the skeleton")
    return rows


def input_pipeline(x: np.ndarray, y: np.ndarray, budget: Budget) -> list:
    """Section 4: graph-K1 at batch 32, fed from tensors and from two tf.data pipelines, timed in
    interleaved rounds."""
    batch, setting = workloads.BATCH_SIZE, workloads.SETTINGS["graph-K1"]
    trainer = workloads.engine_trainer(setting)
    feeds = {"tensors + index blocks (engine)": lambda: workloads.EngineSteps(trainer, x, y, batch),
             "tf.data from_tensor_slices.cache.shuffle.batch.prefetch":
                 lambda: workloads.EngineFedSteps(trainer, workloads.element_pipeline(x, y, batch), batch),
             "tf.data shuffled indices + gather (as keras fit)":
                 lambda: workloads.EngineFedSteps(trainer, workloads.index_gather_pipeline(x, y, batch), batch)}
    rows = []
    steady = measure.interleaved_steps_per_second({name: make() for name, make in feeds.items()},
                                                  budget.steps, budget.repeats)
    for name, result in steady.items():
        rows.append({"feed": name, "steady": result, "steps_per_second": result["steps_per_second"],
                     "samples_per_second": result["steps_per_second"] * batch})
        say(f"  {name:<56} {result['steps_per_second']:8.1f} steps/s")
    for row in rows:
        row["vs_tensors"] = row["steps_per_second"] / rows[0]["steps_per_second"]
    return rows


def batch_sweep(x: np.ndarray, y: np.ndarray, budget: Budget, roof: float, engine_best: str) -> list:
    """Section 5: samples/s of the best engine setting and keras-jit-spe64 per batch size."""
    trainer = workloads.engine_trainer(workloads.SETTINGS[engine_best])
    spe = workloads.SETTINGS[f"keras-jit-spe{workloads.FUSED_K}"]
    model = workloads.keras_model(spe)
    model.fit(x[:spe.steps_per_execution * 32], y[:spe.steps_per_execution * 32], batch_size=32, verbose=0)
    rows = []
    for batch in budget.sweep_batch_sizes:
        for name, make in ((engine_best, lambda: workloads.EngineSteps(trainer, x, y, batch)),
                           (spe.name, lambda: workloads.KerasSteps(model, x, y, batch))):
            steady = measure.steady_steps_per_second(make(), -(-budget.sweep_examples // batch), budget.repeats)
            samples = steady["steps_per_second"] * batch
            gflops = steady["steps_per_second"] * workloads.train_flops_per_step(batch) / 1e9
            rows.append({"setting": name, "batch_size": batch, "steady": steady, "samples_per_second": samples,
                         "gflops": gflops, "roofline_fraction": gflops / roof})
            say(f"  batch {batch:5d} {name:<16} {samples:10.0f} samples/s  {gflops:6.2f} GFLOP/s "
                f"({gflops / roof:.1%} of roofline)")
    return rows


def gradient_rows(x: np.ndarray, y: np.ndarray, budget: Budget) -> list:
    """Section 6: each (tape, manual) pair of `workloads.GRADIENT_PAIRS` at batch 32, interleaved."""
    rows = []
    for tape, manual in workloads.GRADIENT_PAIRS:
        runners = {setting.name: workloads.step_runner(setting, x, y) for setting in (tape, manual)}
        steady = measure.interleaved_steps_per_second(runners, budget.steps, budget.repeats)
        rates = [steady[setting.name]["steps_per_second"] for setting in (tape, manual)]
        rows.append({"mode": tape.mode, "steps_per_execution": tape.steps_per_execution, "steady": steady,
                     "tape_steps_per_second": rates[0], "manual_steps_per_second": rates[1],
                     "manual_vs_tape": rates[1] / rates[0]})
        say(f"  {tape.name:<9} tape {rates[0]:7.1f} steps/s, manual {rates[1]:7.1f} steps/s: x{rates[1] / rates[0]:.2f}")
    return rows


def report() -> int:
    """Runs the whole report; returns the exit status."""
    out = Path(FLAGS.out or ("runs/bench_quick" if FLAGS.quick else "bench/results"))
    check_output_dir(str(out), "--out")  # before the minutes of measuring, not after
    budget = QUICK if FLAGS.quick else FULL
    info = machine()
    if FLAGS.peers:
        return peers_report(info, budget, peer_budget())
    say(f"bench.report on {info['device']} ({', '.join(info['gpu']) or info['cpu']}), TensorFlow {info['tensorflow']}"
        f"{' (quick)' if FLAGS.quick else ''}")
    fashion = workloads.load_data()
    x, y = fashion.train_images[:budget.epoch_examples], fashion.train_labels[:budget.epoch_examples]
    say("roofline (float32 matmul, chained in a tf.function):")
    roof = measure.roofline(budget.roofline_sizes[info["device"]])
    for n, gflops in roof["per_size"].items():
        say(f"  n={n:<5} {gflops:8.1f} GFLOP/s")
    say(f"settings at batch {workloads.BATCH_SIZE} (first epoch: {len(y)} examples):")
    settings = settings_table(x, y, budget, roof["gflops"])
    say("ceiling (bench/ceiling.py: only the matmuls and kernel updates no step can skip):")
    ceiling_result = ceiling_rows(x, y, budget, roof["gflops"])
    say("input pipeline (graph-K1, batch 32):")
    pipeline = input_pipeline(x, y, budget)
    engine_best = max((r for r in settings if r["side"] == "engine"), key=lambda r: r["steps_per_second"])["setting"]
    say(f"batch-size sweep ({engine_best} and keras-jit-spe{workloads.FUSED_K}):")
    sweep = batch_sweep(x, y, budget, roof["gflops"], engine_best)
    say("manual gradients beside the tape (batch 32, interleaved rounds):")
    backward = gradient_rows(x, y, budget)
    say("data-parallel scaling (own process, graph-K64, global batch 256):")
    scaling_result = scaling.in_subprocess(4096 if FLAGS.quick else 32768)
    for row in scaling_result["rows"]:
        say(f"  {row['setting']:<24} {row['steps_per_second']:8.1f} steps/s  x{row['vs_one_device']:.2f}")
    result = {**info, "quick": FLAGS.quick, "budget": dataclasses.asdict(budget), "batch_size": workloads.BATCH_SIZE,
              "model": {"layer_sizes": workloads.layer_sizes(),
                        "train_flops_per_step": workloads.train_flops_per_step(workloads.BATCH_SIZE),
                        "eval_flops_per_example": workloads.eval_flops_per_example()},
              "roofline": roof, "settings": settings, "ceiling": ceiling_result, "input_pipeline": pipeline, "sweep": sweep,
              "gradients": backward, "scaling": scaling_result}
    directories.make_dirs(str(out), "--out")
    stem = out / info["device"]
    writes.write_json(str(stem.with_suffix(".json")), result, indent=1)
    render.chart(result, stem.with_suffix(".png"))
    writes.write_text(str(stem.with_suffix(".md")), render.markdown(result, stem.with_suffix(".png").name))
    say(f"wrote {stem}.json, .md, .png")
    return 0


def peer_budget() -> peer_settings.Budget:
    """The peers budget (QUICK or FULL), narrowed by the --peer_* flags: a focused experiment."""
    budget = peer_settings.QUICK if FLAGS.quick else peer_settings.FULL
    try:
        sizes = tuple(int(size) for size in FLAGS.peer_batch_sizes) or budget.batch_sizes
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--peer_batch_sizes got {','.join(FLAGS.peer_batch_sizes)}: expected positive integers")
    unknown = [name for name in FLAGS.peer_settings
               if name not in {setting.name for setting in peer_settings.SETTINGS + peer_settings.BFLOAT16_SETTINGS}]
    if unknown:
        raise ConfigError(f"--peer_settings got {','.join(unknown)}: not a setting of bench/peer_settings.py")
    return dataclasses.replace(budget, batch_sizes=sizes, rounds=FLAGS.peer_rounds or budget.rounds,
                               tta_epochs=budget.tta_epochs if FLAGS.peer_tta_epochs < 0 else FLAGS.peer_tta_epochs)


def peers_report(info: dict, budget: Budget, peers_budget: peer_settings.Budget) -> int:
    """`--peers`: the roofline, then `bench.peers.run`; writes <out>/peers.json, .md and .png."""
    out = Path(FLAGS.out or ("runs/bench_quick" if FLAGS.quick else "bench/results"))
    directories.make_dirs(str(out), "--out")
    say(f"bench.report --peers on {info['cpu']}, TensorFlow {info['tensorflow']}{' (quick)' if FLAGS.quick else ''}")
    say("roofline (float32 matmul, chained in a tf.function):")
    roof = measure.roofline(budget.roofline_sizes[info["device"]])
    for n, gflops in roof["per_size"].items():
        say(f"  n={n:<5} {gflops:8.1f} GFLOP/s")
    result = {**info, "quick": FLAGS.quick, "roofline": roof,
              "peers": peers.run(peers_budget, roof["gflops"], say, only=FLAGS.peer_settings)}
    stem = out / "peers"
    writes.write_json(str(stem.with_suffix(".json")), result, indent=1)
    peers_render.chart(result, stem.with_suffix(".png"))
    writes.write_text(str(stem.with_suffix(".md")), peers_render.markdown(result, stem.with_suffix(".png").name))
    say(f"wrote {stem}.json, .md, .png")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (argv[0] is the program) through engine/run/program.py; returns the exit status."""
    return program.run(PROGRAM, FLAGS, argv, report)


if __name__ == "__main__":
    sys.exit(main())

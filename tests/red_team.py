"""The red team: every way issues 14 and 23 found to break the command line, tried again, as a table.

    python tests/red_team.py                 # all probes, in a fresh temporary directory
    python tests/red_team.py lock damaged    # only the probes whose names contain these words

Each probe is what the program's most suspicious user would try: resume on other data, two runs
in one output directory, a damaged checkpoint index, a finite divergence, a cut `.tflite`, a gzip
bomb, a full disk, Ctrl-C while the data loads; a link planted at an output, a `.lock` that is a
link or a directory, an export killed half-way or mixed by hand, `--csv` onto its own model, a
quoted `~`; and every kind of issue 23's one-line promise: a dataset name TFDS cannot take, a
learning rate that is inf or 0 in float32, results.json of wrong types, unwritable outputs of the
tour, launch, graph_picture and bench.report, a command not found, TF_CONFIG that cannot work,
SIGTERM while the data loads; a model `predict` cannot serve, class names with terminal escapes,
a multi-worker peer that never comes, a stop while search's workers or the notebook's kernel run,
the tour over a user's own search... `KINDS` groups the probes by the kind of break they try,
each probe in one kind. Each runs the real programs (`train.py`,
`python -m engine.experiments.search`, `python -m engine.deploy.predict`, the tour) as processes on
a tiny data set (640 Fashion-MNIST training images) and grades what happened:

    PASS  the exit status README documents, one error line (no traceback, at most 1,000
          characters) saying what the probe expects, and no file that was there before changed
    WEAK  the right exit status and nothing lost, but the line is unclear or too long, or a
          bound (memory, time) was not met
    FAIL  anything else: a wrong exit status, a traceback, a changed or lost file

Lines TensorFlow's C++ runtime writes to stderr on every start (`I0000 ... cudart_stub.cc ...`,
"Created TensorFlow Lite XNNPACK delegate"), whatever TF_CPP_MIN_LOG_LEVEL says, are not the
program's output and are not counted (`TF_CHATTER`). The exit status is 1 if any probe FAILs or
is WEAK. `tests/test_red_team.py` runs each probe as a test (most marked slow). A full disk is
simulated with a 2 MB tmpfs (needs root; the probe is skipped, and says so, elsewhere), with
/dev/full, and at `metrics.png` by a directory in its place (any write failure takes one path).
"""

import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
PYTHON = sys.executable
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
TRAIN_FLAGS = ("--hidden=16", "--epochs=1", "--mode=graph", "--steps_per_execution=8", "--batch_size=32")


@dataclasses.dataclass
class Outcome:
    verdict: str  # PASS, WEAK, FAIL or SKIP
    detail: str


def snapshot(directory: Path) -> Dict[str, str]:
    """sha256 of every file under `directory` but the lock file (its content is the holder's pid)."""
    if not directory.exists():
        return {}
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file() and path.name != ".lock"}


def peak_rss_mb(result: subprocess.CompletedProcess) -> float:
    return getattr(result, "peak_rss_mb", 0.0)


class Lab:
    """A fresh working directory with two tiny data sets and helpers to run the programs."""

    def __init__(self, root: Path):
        self.root = root
        self.tfds = root / "tfds"
        self.data_a = self._data("data_a", slice(0, 640))
        self.data_b = self._data("data_b", slice(640, 1280))  # same size, other images
        self._count = 0
        self._import_seconds: Optional[float] = None  # `refused_slowly`

    def _data(self, name: str, train: slice) -> Path:
        sys.path.insert(0, str(REPO))
        from engine.data import idx

        folder = self.root / name
        if not folder.exists():
            folder.mkdir(parents=True)
            for kind, part in (("images-idx3", train), ("labels-idx1", train)):
                array = idx.read_idx(FASHION / f"train-{kind}-ubyte.gz")[part]
                idx.write_idx(folder / f"train-{kind}-ubyte.gz", array)
            for kind in ("images-idx3", "labels-idx1"):
                idx.write_idx(folder / f"t10k-{kind}-ubyte.gz", idx.read_idx(FASHION / f"t10k-{kind}-ubyte.gz")[:160])
        return folder

    def fresh(self, name: str) -> Path:
        self._count += 1
        return self.root / f"{self._count:02d}-{name}"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Runs a command (python and its arguments); records the child's peak resident memory as wait4
        gives it, which counts this process's memory at the fork too: compare two runs, not a fixed bound."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen([PYTHON, *args], cwd=REPO, env=ENV, stdout=out, stderr=err, text=True)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0), err.seek(0)
            result = subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())
        result.peak_rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
        return result

    def refused_slowly(self, started: float, beyond_import: float) -> Optional[str]:
        """"refused only after N s" when a run started at `started` (time.monotonic) took more than
        `beyond_import` seconds past what importing TensorFlow alone takes here, else None: the budget
        of a refusal that needs TensorFlow (a checkpoint's history is read through it). The import,
        measured once per lab, took 6.9-8.1 s on the 2-core Xeon on 2026-12-07, so a fixed 8 s
        budget graded the host, not the run."""
        took = time.monotonic() - started
        if self._import_seconds is None:
            began = time.monotonic()
            self.run("-c", "import tensorflow")
            self._import_seconds = time.monotonic() - began
        return f"refused only after {took:.0f} s" if took > self._import_seconds + beyond_import else None

    def train(self, out: Path, *flags: str, data: Optional[Path] = None) -> subprocess.CompletedProcess:
        return self.run("train.py", "--dataset=mnist", f"--data_dir={data or self.data_a}", f"--tfds_dir={self.tfds}",
                        *TRAIN_FLAGS, f"--output_dir={out}", *flags)

    def start_train(self, out: Path, *flags: str) -> subprocess.Popen:
        command = [PYTHON, "train.py", "--dataset=mnist", f"--data_dir={self.data_a}", f"--tfds_dir={self.tfds}",
                   *TRAIN_FLAGS, f"--output_dir={out}", *flags]
        return subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def search(self, out: Path, *flags: str, data: Optional[Path] = None) -> subprocess.CompletedProcess:
        return self.run("-m", "engine.experiments.search", "--dataset=mnist", f"--data_dir={data or self.data_a}",
                        f"--tfds_dir={self.tfds}", "--train_subset=200", "--folds=2", "--hidden", "8",
                        "--batch_size", "32", "--epochs", "1", f"--output_dir={out}", *flags)

    def predict(self, *flags: str) -> subprocess.CompletedProcess:
        return self.run("-m", "engine.deploy.predict", *flags)

    def exported(self) -> Path:
        """An export of a tiny trained model (made once)."""
        folder = self.root / "export"
        if not (folder / "model.tflite").exists():
            result = self.train(self.root / "export-run", f"--export_dir={folder}")
            assert result.returncode == 0, result.stderr[-2000:]
        return folder


# TensorFlow's C++ start-up lines, written to stderr before its logging is set up, whatever
# TF_CPP_MIN_LOG_LEVEL says (TensorFlow 2.21): not the program's output, so not counted.
TF_CHATTER = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before "
                        r"absl::InitializeLog|To enable the following instructions|INFO: Created TensorFlow Lite XNNPACK delegate)")


def error_lines(stderr: str) -> List[str]:
    """stderr's lines, without TensorFlow's C++ start-up chatter."""
    return [line for line in stderr.strip().splitlines() if not TF_CHATTER.match(line)]


def grade(result: subprocess.CompletedProcess, status: int, fragment: str = "", before=None, after=None,
          weak_if: Optional[str] = None) -> Outcome:
    """PASS/WEAK/FAIL of one run against what README promises (see the module docstring)."""
    lines = error_lines(result.stderr)
    last = lines[-1] if lines else ""
    if result.returncode != status:
        return Outcome("FAIL", f"exit {result.returncode}, expected {status}: {result.stderr.strip()[-300:]}")
    if "Traceback" in result.stderr or "Fatal Python error" in result.stderr:
        return Outcome("FAIL", f"a traceback: {result.stderr.strip()[-300:]}")
    if status != 0 and len(lines) != 1:
        return Outcome("FAIL", f"{len(lines)} lines on stderr, expected one: {result.stderr.strip()[-300:]}")
    if before is not None and before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        return Outcome("FAIL", f"earlier files changed: {changed[:3]}")
    if fragment and fragment not in result.stderr + result.stdout:
        return Outcome("WEAK", f"expected {fragment!r} in: {(last or result.stdout.strip()[-200:])[:300]}")
    if len(last) > 1000:
        return Outcome("WEAK", f"an error line of {len(last)} characters")
    if weak_if:
        return Outcome("WEAK", weak_if)
    return Outcome("PASS", (last or result.stdout.strip().splitlines()[-1])[:160])


# ----------------------------------------------------------------------------------------------- the probes

def probe_resume_on_other_data(lab: Lab) -> Outcome:
    out = lab.fresh("other-data")
    lab.train(out)
    before = snapshot(out)
    result = lab.train(out, "--epochs=2", data=lab.data_b)
    return grade(result, 2, "data_fingerprint", before, snapshot(out))


def probe_two_runs_one_output_dir(lab: Lab) -> Outcome:
    out = lab.fresh("two-runs")
    first = lab.start_train(out, "--epochs=100000", "--hidden=32")
    deadline = time.monotonic() + 120
    while not (out / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    second = lab.train(out, "--hidden=64")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=300)
    return grade(second, 2, f"is in use by another run (pid {first.pid})")


def probe_lock_of_a_killed_run(lab: Lab) -> Outcome:
    out = lab.fresh("killed-holder")
    first = lab.start_train(out, "--epochs=100000")
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "checkpoint").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    result = lab.train(out, "--noresume")  # the killed run's lock must not block; its checkpoints are replaced
    return grade(result, 0, "--noresume: starting over")


def _finished(lab: Lab, name: str, *flags: str) -> Path:
    out = lab.fresh(name)
    result = lab.train(out, "--epochs=2", *flags)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def probe_garbage_index(lab: Lab) -> Outcome:
    out = _finished(lab, "garbage-index")
    (out / "checkpoints" / "checkpoint").write_text("this is not an index {{{")
    before = snapshot(out)
    return grade(lab.train(out, "--epochs=3"), 2, "ckpt-1, ckpt-2 are there: pass --resume_from=", before, snapshot(out))


def probe_missing_index(lab: Lab) -> Outcome:
    out = _finished(lab, "missing-index")
    (out / "checkpoints" / "checkpoint").unlink()
    before = snapshot(out)
    return grade(lab.train(out, "--epochs=3"), 2, "is missing or damaged", before, snapshot(out))


def probe_resume_from_a_chosen_checkpoint(lab: Lab) -> Outcome:
    out = _finished(lab, "resume-from")
    (out / "checkpoints" / "checkpoint").unlink()
    result = lab.train(out, "--epochs=3", f"--resume_from={out}/checkpoints/ckpt-1")
    return grade(result, 0, f"Resuming from {out}/checkpoints/ckpt-1: epoch 2")


def probe_corrupted_newest_names_the_intact_one(lab: Lab) -> Outcome:
    out = _finished(lab, "corrupt-newest")
    data = next((out / "checkpoints").glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    before = snapshot(out)
    result = lab.train(out, "--epochs=3")
    return grade(result, 2, f"pass --resume_from={out}/checkpoints/ckpt-1", before, snapshot(out))


def probe_noresume_with_a_bad_flag_deletes_nothing(lab: Lab) -> Outcome:
    out = _finished(lab, "noresume-bad-tb")
    before = snapshot(out)
    result = lab.train(out, "--noresume", "--tensorboard_dir=/dev/null/tb")
    return grade(result, 2, "--tensorboard_dir /dev/null/tb is not writable", before, snapshot(out))


def probe_noresume_with_bad_data_deletes_nothing(lab: Lab) -> Outcome:
    out = _finished(lab, "noresume-bad-data")
    bad = lab.root / "bad-data"
    shutil.copytree(lab.data_a, bad, dirs_exist_ok=True)
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    before = snapshot(out)
    result = lab.train(out, "--noresume", data=bad)
    return grade(result, 2, "corrupt gzip", before, snapshot(out))


def probe_finite_divergence(lab: Lab) -> Outcome:
    out = lab.fresh("finite-divergence")
    result = lab.train(out, "--hidden=32", "--learning_rate=1e3", "--checkpoint_every=1", "--steps_per_execution=1")
    return grade(result, 1, "(--divergence_factor): training diverged; no good checkpoint was written")


def probe_divergence_keeps_the_good_checkpoint(lab: Lab) -> Outcome:
    out = _finished(lab, "good-then-diverge", "--hidden=32")
    before = snapshot(out)
    result = lab.train(out, "--hidden=32", "--epochs=4", "--learning_rate=1e4", "--checkpoint_every=1",
                       "--steps_per_execution=1")
    return grade(result, 1, f"the last good checkpoint, {out}/checkpoints/ckpt-2, is kept", before, snapshot(out))


def probe_truncated_tflite(lab: Lab) -> Outcome:
    export = lab.exported()
    folder = lab.fresh("cut-tflite")
    folder.mkdir()
    data = (export / "model.tflite").read_bytes()
    results = []
    for keep in (len(data) // 2, len(data) - 100, 64):
        (folder / "model.tflite").write_bytes(data[:keep])  # no manifest: the flatbuffer check alone
        results.append(lab.predict("--model", str(folder / "model.tflite"), "--images",
                                   str(lab.data_a / "t10k-images-idx3-ubyte.gz")))
    worst = next((r for r in results if r.returncode != 2), results[0])
    return grade(worst, 2, "damaged TensorFlow Lite file")


def probe_tflite_unlike_its_manifest(lab: Lab) -> Outcome:
    export = lab.exported()
    folder = lab.fresh("manifest")
    shutil.copytree(export, folder)
    data = bytearray((folder / "model.tflite").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.tflite").write_bytes(bytes(data))
    result = lab.predict("--model", str(folder / "model.tflite"), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"))
    return grade(result, 2, "the file is cut or changed")


def probe_unreadable_data_file(lab: Lab) -> Outcome:
    data = lab.fresh("unreadable-data")
    shutil.copytree(lab.data_a, data)
    (data / "train-images-idx3-ubyte.gz").unlink()
    (data / "train-images-idx3-ubyte.gz").symlink_to("/proc/self/mem")  # reads fail with EIO, even as root
    out = lab.fresh("unreadable-out")
    return grade(lab.train(out, data=data), 2, "cannot read")


def probe_corrupted_prepared_cache(lab: Lab) -> Outcome:
    out, tfds = lab.fresh("cache-run"), lab.fresh("cache-tfds")
    first = lab.run("train.py", "--dataset=mnist", f"--data_dir={lab.data_a}", f"--tfds_dir={tfds}", *TRAIN_FLAGS,
                    f"--output_dir={out}")
    assert first.returncode == 0, first.stderr[-2000:]
    for record in tfds.rglob("*.tfrecord*"):
        record.write_bytes(record.read_bytes()[: len(record.read_bytes()) // 2])
    again = lab.run("train.py", "--dataset=mnist", f"--data_dir={lab.data_a}", f"--tfds_dir={tfds}", *TRAIN_FLAGS,
                    f"--output_dir={lab.fresh('cache-rerun')}")
    return grade(again, 0, "; preparing it again from the IDX files")


def _flag_probe(flag: str, fragment: str, status: int = 2) -> Callable[[Lab], Outcome]:
    def probe(lab: Lab) -> Outcome:
        out = lab.fresh("flag")
        result = lab.train(out, flag.format(root=lab.root))
        outcome = grade(result, status, fragment.format(root=lab.root))
        if outcome.verdict == "PASS" and out.exists():
            return Outcome("WEAK", f"a refused run left {out} behind")
        return outcome
    return probe


probe_negative_seed = _flag_probe("--seed=-1", "--seed must be in [0, 2**31), got -1")
probe_tiny_validation_split = _flag_probe("--validation_split=1e-6", "leaves an empty training or validation set")
probe_model_too_large = _flag_probe("--hidden=100000000", "parameters and needs about")
probe_unusable_tensorboard_dir = _flag_probe("--tensorboard_dir=/dev/null/tb", "--tensorboard_dir /dev/null/tb is not writable")
probe_unusable_tfds_dir = _flag_probe("--tfds_dir=/dev/null/tfds", "--tfds_dir /dev/null/tfds is not writable")
probe_unusable_export_dir = _flag_probe("--export_dir=/dev/null/export", "--export_dir /dev/null/export is not writable")
probe_resume_from_nothing = _flag_probe("--resume_from={root}/nothing/ckpt-1", "is not a checkpoint")
probe_long_output_path = _flag_probe("--output_dir=/dev/null/" + "x" * 6000,
                                     "is not writable (Not a directory): pass a writable directory")
probe_long_error_line = _flag_probe("--hidden=" + ",".join(["7"] * 3000 + ["-1"]),
                                    "expected a comma-separated list of positive integers")


def probe_checkpoints_is_a_file(lab: Lab) -> Outcome:
    out = lab.fresh("checkpoints-file")
    out.mkdir()
    (out / "checkpoints").write_text("precious")
    before = snapshot(out)
    started = time.monotonic()
    result = lab.train(out)
    slow = f"refused only after {time.monotonic() - started:.0f} s" if time.monotonic() - started > 10 else None
    return grade(result, 2, "is a file, not the checkpoint directory", before, snapshot(out), weak_if=slow)


def _tmpfs(lab: Lab, name: str, size: str = "2m") -> Optional[Path]:
    mount = lab.fresh(name)
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        return None
    return mount


def _fill(mount: Path, leave: int) -> None:
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "wb") as file:
        file.write(b"\0" * max(0, free - leave))


def probe_full_disk_at_a_checkpoint(lab: Lab) -> Outcome:
    mount = _tmpfs(lab, "full-disk-checkpoint")
    if mount is None:
        return Outcome("SKIP", "cannot mount a tmpfs here (not root?): a full disk is not simulated")
    try:
        out = mount / "run"
        first = lab.train(out)
        assert first.returncode == 0, first.stderr[-2000:]
        before = {k: v for k, v in snapshot(out / "checkpoints").items() if "ckpt-1" in k}
        _fill(mount, 4096)
        result = lab.train(out, "--epochs=2")
        after = {k: v for k, v in snapshot(out / "checkpoints").items() if "ckpt-1" in k}
        return grade(result, 1, "o space left on device", before, after)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def probe_full_disk_while_preparing_data(lab: Lab) -> Outcome:
    mount = _tmpfs(lab, "full-disk-tfds")
    if mount is None:
        return Outcome("SKIP", "cannot mount a tmpfs here (not root?): a full disk is not simulated")
    try:
        _fill(mount, 64 * 1024)
        out = lab.fresh("full-tfds-out")
        result = lab.run("train.py", "--dataset=mnist", f"--data_dir={lab.data_a}", f"--tfds_dir={mount}",
                         *TRAIN_FLAGS, f"--output_dir={out}")
        return grade(result, 1, "o space left on device")
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def probe_unwritable_metrics_png(lab: Lab) -> Outcome:
    out = lab.fresh("metrics-png")
    (out / "metrics.png").mkdir(parents=True)  # a write failure at the very end, after training
    result = lab.train(out)
    return grade(result, 1, "cannot write")


def probe_labels_not_utf8(lab: Lab) -> Outcome:
    folder = lab.fresh("labels-latin1")
    shutil.copytree(lab.exported(), folder)
    (folder / "manifest.json").unlink()  # a folder put together by hand: with the manifest, any change is refused
    (folder / "labels.txt").write_bytes("".join(f"cl\xe4ss {i}\n" for i in range(10)).encode("latin-1"))
    result = lab.predict("--model", str(folder / "model.tflite"), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"))
    return grade(result, 2, "is not UTF-8 text")


def probe_labels_empty(lab: Lab) -> Outcome:
    folder = lab.fresh("labels-empty")
    shutil.copytree(lab.exported(), folder)
    (folder / "manifest.json").unlink()  # as labels_not_utf8
    (folder / "labels.txt").write_text("")
    result = lab.predict("--model", str(folder / "model.tflite"), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"))
    return grade(result, 2, "names 0 classes, the model has 10")


def probe_csv_on_a_full_disk(lab: Lab) -> Outcome:
    result = lab.predict("--model", str(lab.exported() / "model.tflite"), "--images",
                         str(lab.data_a / "t10k-images-idx3-ubyte.gz"), "--csv", "/dev/full")
    return grade(result, 1, "could not be written whole (No space left on device)")


def write_png(path: Path, width: int, height: int) -> Path:
    """A black 8-bit grayscale PNG of width x height, compressed row by row (a 20000x20000 one is ~1 MB)."""
    compressor, body = zlib.compressobj(1), bytearray()
    row = b"\0" * (width + 1)  # the filter byte, then the pixels
    for _ in range(height):
        body += compressor.compress(row)
    body += compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", bytes(body)) + chunk(b"IEND", b""))
    return path


def probe_huge_png(lab: Lab) -> Outcome:
    """Refused by its header, before 400 MB of pixels are decoded: weak if the refusal's peak memory exceeds
    the same program's on one 28x28 image by more than a decoded copy would take (300 MB). A fixed bound
    cannot judge it: a child's ru_maxrss also counts its parent's resident memory at the fork (Linux folds
    the forked copy's high-water mark in at exec), 1.6 GB for a pytest worker late in the slow tier, where
    the program alone peaks at 654 MB (648 MB on the huge image) on the 2-core Intel Xeon."""
    model = str(lab.exported() / "model.tflite")
    baseline = lab.predict("--model", model, "--images", str(write_png(lab.fresh("small").with_suffix(".png"), 28, 28)))
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    result = lab.predict("--model", model, "--images", str(write_png(lab.fresh("huge").with_suffix(".png"), 20000, 20000)))
    extra = peak_rss_mb(result) - peak_rss_mb(baseline)
    heavy = f"peak memory {peak_rss_mb(result):.0f} MB, {extra:.0f} MB over a 28x28 image's" if extra > 300 else None
    return grade(result, 2, "is 20000x20000 pixels, the model takes 28x28", weak_if=heavy)


def probe_gzip_bomb(lab: Lab) -> Outcome:
    data = lab.fresh("gzip-bomb")
    shutil.copytree(lab.data_a, data)
    header = struct.pack(">HBBI", 0, 8, 1, 640)  # 640 labels announced...
    with gzip.open(data / "train-labels-idx1-ubyte.gz", "wb", compresslevel=9) as file:
        file.write(header)
        for _ in range(400):
            file.write(b"\0" * (1 << 20))  # ...400 MB follow
    started = time.monotonic()
    result = lab.train(lab.fresh("gzip-bomb-out"), data=data)
    slow = f"took {time.monotonic() - started:.0f} s" if time.monotonic() - started > 60 else None
    return grade(result, 2, "trailing byte", weak_if=slow)


def probe_fewer_epochs_than_trained(lab: Lab) -> Outcome:
    out = _finished(lab, "fewer-epochs")
    before = snapshot(out)
    result = lab.train(out, "--epochs=1")
    return grade(result, 2, "has 2 epochs trained, more than --epochs=1", before, snapshot(out))


def probe_temp_checkpoint_folders(lab: Lab) -> Outcome:
    out = _finished(lab, "temp-folders")
    (out / "checkpoints" / "ckpt-9_temp").mkdir()
    (out / "checkpoints" / "ckpt-9_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    result = lab.train(out, "--epochs=3")
    outcome = grade(result, 0, "Resuming from")
    left = list((out / "checkpoints").glob("*_temp"))
    return Outcome("FAIL", f"left behind: {left}") if left else outcome


def probe_failed_run_leaves_no_directory(lab: Lab) -> Outcome:
    bad = lab.fresh("empty-data")
    shutil.copytree(lab.data_a, bad)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    out = lab.fresh("failed-out")
    outcome = grade(lab.train(out, data=bad), 2, "t10k-labels-idx1-ubyte.gz")
    return Outcome("FAIL", f"{out} left behind: {list(out.iterdir())}") if out.exists() else outcome


def probe_ctrl_c_while_loading(lab: Lab) -> Outcome:
    out = lab.fresh("ctrl-c")
    command = [PYTHON, "train.py", "--dataset=fashion_mnist", f"--data_dir={FASHION}", f"--tfds_dir={lab.fresh('ctrl-c-tfds')}",
               *TRAIN_FLAGS, f"--output_dir={out}"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # the whole of Fashion-MNIST takes seconds to prepare: Ctrl-C lands in it
        if line.startswith("Preparing fashion_mnist"):
            time.sleep(1)
            process.send_signal(signal.SIGINT)
            break
    stdout, stderr = process.communicate(timeout=300)
    outcome = grade(subprocess.CompletedProcess(command, process.returncode, stdout, stderr), 130, "stopped by SIGINT")
    return Outcome("FAIL", f"{out} left behind") if outcome.verdict == "PASS" and out.exists() else outcome


def probe_search_on_other_data(lab: Lab) -> Outcome:
    out = lab.fresh("search-other-data")
    first = lab.search(out)
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(out)
    return grade(lab.search(out, data=lab.data_b), 2, "holds trials of another setup", before, snapshot(out))


def probe_search_diverged_trial(lab: Lab) -> Outcome:
    out = lab.fresh("search-nan")
    result = lab.search(out, "--learning_rate=1e6", "--learning_rate=0.05")
    text = (out / "results.json").read_text() if (out / "results.json").exists() else ""
    try:
        json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(f"bare {name}")))
    except ValueError as error:
        return Outcome("FAIL", f"results.json is not strict JSON: {error}")
    ranking = (out / "ranking.csv").read_text().splitlines() if (out / "ranking.csv").exists() else []
    if len(ranking) != 3 or "1000000" not in ranking[-1] or "diverged" not in ranking[-1]:
        return Outcome("FAIL", f"the diverged trial is not ranked last: {ranking}")
    return grade(result, 0, "diverged (a NaN or Inf loss: ranked last)")


def probe_search_malformed_results(lab: Lab) -> Outcome:
    out = lab.fresh("search-malformed")
    out.mkdir()
    results = []
    for text in ("[1, 2]", '{"setup": {}, "trials": 5}', "{not json"):
        (out / "results.json").write_text(text)
        before = snapshot(out)
        results.append((lab.search(out), before, snapshot(out)))
    worst = next((r for r in results if r[0].returncode != 2), results[0])
    return grade(worst[0], 2, "results", worst[1], worst[2])


# ------------------------------------------------------------------ issue 23: files, links and exports

def _outside(lab: Lab, name: str) -> Path:
    """A directory outside every directory a probe names: no program may change it."""
    folder = lab.fresh(name)
    folder.mkdir()
    return folder


def _link(at: Path, outside: Path) -> Path:
    """A link at `at` to a precious file of its own in `outside`."""
    target = outside / f"{at.parent.name}-{at.name}"
    target.write_text("precious\n")
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(target)
    return target


def probe_links_at_every_output(lab: Lab) -> Outcome:
    out, export, outside = lab.fresh("links-out"), lab.fresh("links-export"), _outside(lab, "links-outside")
    for at in (out / "history.json", out / "history.json.tmp", out / "metrics.png", export / "model.tflite",
               export / "labels.txt", export / "manifest.json"):
        _link(at, outside)
    before = snapshot(outside)
    outcome = grade(lab.train(out, f"--export_dir={export}"), 0, "Wrote", before, snapshot(outside))
    still = [str(path) for path in (out / "history.json", out / "metrics.png", export / "model.tflite") if path.is_symlink()]
    return Outcome("FAIL", f"still links, not the files written: {still}") if outcome.verdict == "PASS" and still else outcome


def probe_lock_is_a_link(lab: Lab) -> Outcome:
    out, outside = lab.fresh("lock-link"), _outside(lab, "lock-link-outside")
    _link(out / ".lock", outside)
    before = snapshot(outside)
    return grade(lab.train(out), 2, "is a symbolic link", before, snapshot(outside))


def probe_lock_is_a_directory(lab: Lab) -> Outcome:
    out = lab.fresh("lock-directory")
    (out / ".lock").mkdir(parents=True)
    return grade(lab.train(out), 2, f"{out}/.lock is a directory, not the lock file a run keeps there")


def probe_checkpoints_is_a_link(lab: Lab) -> Outcome:
    out, outside = lab.fresh("checkpoints-link"), _outside(lab, "checkpoints-link-outside")
    out.mkdir()
    (outside / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    (out / "checkpoints").symlink_to(outside)
    before = snapshot(outside)
    started = time.monotonic()
    result = lab.train(out, "--noresume")  # before issue 23: trained, then "Cannot call rmtree on a symbolic link"
    slow = f"refused only after {time.monotonic() - started:.0f} s" if time.monotonic() - started > 10 else None
    return grade(result, 2, "checkpoints is a symbolic link", before, snapshot(outside), weak_if=slow)


def probe_link_inside_checkpoints(lab: Lab) -> Outcome:
    out, outside = lab.fresh("checkpoints-inner-link"), _outside(lab, "checkpoints-inner-outside")
    _link(out / "checkpoints" / "ckpt-1.index", outside)  # TensorFlow would write the first save through it
    before = snapshot(outside)
    return grade(lab.train(out), 2, "ckpt-1.index is a symbolic link", before, snapshot(outside))


def probe_tilde_in_an_output_path(lab: Lab) -> Outcome:
    made = REPO / "~"
    existed = made.exists()
    try:
        result = lab.train(Path("~/red-team-tilde"))
        outcome = grade(result, 2, "starts with '~', which only a shell expands")
        return Outcome("FAIL", f"made {made}") if made.exists() and not existed else outcome
    finally:
        if made.exists() and not existed:
            shutil.rmtree(made)


def _second_export(lab: Lab) -> Path:
    """An export of another training (another seed) than `lab.exported()`'s."""
    folder = lab.root / "export-2"
    if not (folder / "model.tflite").exists():
        result = lab.train(lab.root / "export-2-run", "--seed=1", f"--export_dir={folder}")
        assert result.returncode == 0, result.stderr[-2000:]
    return folder


def _classes(lab: Lab, model: Path, name: str) -> subprocess.CompletedProcess:
    csv = lab.fresh(name).with_suffix(".csv")
    result = lab.predict("--model", str(model), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"), "--csv", str(csv))
    result.classes = [line.split(",")[1] for line in csv.read_text().splitlines()[1:]] if csv.exists() else []
    return result


def probe_export_killed_mid_way(lab: Lab) -> Outcome:
    worst = None
    for kill, delay in ((signal.SIGKILL, 0.5), (signal.SIGTERM, 1.0)):
        folder = lab.fresh(f"killed-export-{kill.name}")
        shutil.copytree(lab.exported(), folder)
        process = lab.start_train(lab.fresh("killed-export-run"), f"--export_dir={folder}", "--seed=2")
        for line in process.stdout:  # the test set is evaluated, then the export begins
            if line.startswith("Test:"):
                time.sleep(delay)
                process.send_signal(kill)
                break
        process.communicate(timeout=300)
        results = [_classes(lab, folder / name, f"killed-{kill.name}-{name}") for name in ("saved_model", "model.tflite")]
        if any(result.returncode != 0 for result in results) or results[0].classes != results[1].classes:
            worst = next(r for r in results if r.returncode != 0) if any(r.returncode for r in results) else None
            if worst is None:
                return Outcome("FAIL", f"after {kill.name}: the SavedModel and the .tflite disagree on "
                                       f"{sum(a != b for a, b in zip(results[0].classes, results[1].classes))} images")
            return grade(worst, 0)
    return Outcome("PASS", "after SIGKILL and SIGTERM mid-export: one whole export, its two formats agree")


def probe_mixed_export(lab: Lab) -> Outcome:
    folder = lab.fresh("mixed-export")
    shutil.copytree(lab.exported(), folder)
    shutil.rmtree(folder / "saved_model")
    shutil.copytree(_second_export(lab) / "saved_model", folder / "saved_model")  # what a re-export killed used to leave
    results = [lab.predict("--model", str(folder / name), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"))
               for name in ("saved_model", "model.tflite")]
    worst = next((r for r in results if r.returncode != 2), results[0])
    return grade(worst, 2, "is mixed or damaged")


def probe_csv_onto_its_own_input(lab: Lab) -> Outcome:
    folder = lab.fresh("csv-input")
    shutil.copytree(lab.exported(), folder)
    before = snapshot(folder)
    result = lab.predict("--model", str(folder / "model.tflite"), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"),
                         "--csv", str(folder / "model.tflite"))
    return grade(result, 2, "which this run reads", before, snapshot(folder))


# ------------------------------------------------------------- issue 23: one boundary, one line each

def _command_probe(fragment: str, status: int, *command: str, env: Optional[Dict[str, str]] = None
                   ) -> Callable[[Lab], Outcome]:
    """Runs `command` (after `python`; {root} is the lab) and grades it; nothing may be left where it wrote.

    `env` changes the programs' environment for the run (a value of None removes the variable).
    """
    def probe(lab: Lab) -> Outcome:
        args = [part.format(root=lab.root) for part in command]
        if env:
            saved = {name: ENV.get(name) for name in env}
            for name, value in env.items():
                ENV.pop(name, None) if value is None else ENV.__setitem__(name, value)
        try:
            return grade(lab.run(*args), status, fragment)
        finally:
            if env:
                for name, value in saved.items():
                    ENV.pop(name, None) if value is None else ENV.__setitem__(name, value)
    return probe


probe_dataset_with_a_dash = _flag_probe("--dataset=fashion-mnist", "did you mean --dataset=fashion_mnist?")
probe_dataset_empty = _flag_probe("--dataset=", "expected a dataset name")
probe_dataset_unknown_version = _command_probe("cannot be loaded at version 99.0.0", 2, "train.py",
                                               "--dataset=mnist:99.0.0", "--tfds_dir={root}/tfds", "--output_dir={root}/v")
probe_dataset_unknown_config = _command_probe("BuilderConfig bogus not found", 2, "train.py", "--dataset=fashion_mnist/bogus",
                                              "--tfds_dir={root}/tfds", "--output_dir={root}/v")
probe_learning_rate_inf = _flag_probe("--learning_rate=inf", "--learning_rate must be a finite number > 0")
probe_learning_rate_zero_in_float32 = _flag_probe("--learning_rate=1e-300", "below float32's smallest normal number")
probe_momentum_one_in_float32 = _flag_probe("--momentum=0.99999999", "it rounds to 1.0 in float32")
probe_search_negative_seed = _command_probe("--seed must be in [0, 2**31)", 2, "-m", "engine.experiments.search",
                                            "--seed=-1")
probe_tour_unwritable_output_dir = _command_probe("--output_dir /dev/null/tour is not writable", 2, "-m", "engine.tour",
                                                  "--output_dir=/dev/null/tour")
probe_launch_unwritable_log_dir = _command_probe("--log_dir /dev/null/logs is not writable", 2, "-m",
                                                 "engine.distribute.launch", "--log_dir=/dev/null/logs", "--", "python")
probe_launch_missing_command = _command_probe("the command /nonexistent/python is not found", 2, "-m",
                                              "engine.distribute.launch", "--log_dir={root}/launch-logs", "--",
                                              "/nonexistent/python")
probe_graph_picture_model_too_large = _command_probe("parameters and needs about", 2, "-m", "engine.tour.graph_picture",
                                                     "--hidden=100000000", "--out={root}/graph")
probe_bench_report_unwritable_out = _command_probe("--out /dev/null/bench is not writable", 2, "-m", "bench.report",
                                                   "--quick", "--out=/dev/null/bench")
probe_home_unwritable_without_tfds_dir = _command_probe(
    "/dev/null/tensorflow_datasets is not writable", 2, "train.py", "--dataset=mnist", "--data_dir={root}/data_a",
    "--output_dir={root}/home-out", env={"HOME": "/dev/null", "TFDS_DATA_DIR": None})
probe_tf_config_workers_a_string = _command_probe(
    'cluster.worker must be a list of "host:port" strings', 2, "train.py", "--strategy=multi_worker", "--dataset=mnist",
    "--data_dir={root}/data_a", "--tfds_dir={root}/tfds", "--output_dir={root}/tf-config-out",
    env={"TF_CONFIG": '{"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}}'})
probe_tf_config_chief_absent = _command_probe(
    "task type 'chief' is not a job of its cluster", 2, "train.py", "--strategy=multi_worker", "--dataset=mnist",
    "--data_dir={root}/data_a", "--tfds_dir={root}/tfds", "--output_dir={root}/tf-config-out",
    env={"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "chief", "index": 0}}'})


def probe_search_results_of_wrong_types(lab: Lab) -> Outcome:
    out = lab.fresh("search-types")
    out.mkdir()
    results = []
    for accuracy, params in (('"0.9"', '{"hidden": [8]}'), ("0.9", "{}"), ("NaN", '{"hidden": [8]}')):
        (out / "results.json").write_text(f'{{"setup": {{}}, "trials": {{"t": {{"params": {params}, '
                                          f'"accuracy": {accuracy}, "loss": 0.3}}}}}}')
        before = snapshot(out)
        results.append((lab.search(out), before, snapshot(out)))
    worst = next((r for r in results if r[0].returncode != 2 or "Traceback" in r[0].stderr), results[0])
    return grade(worst[0], 2, "results.json", worst[1], worst[2])


def probe_sigterm_while_loading(lab: Lab) -> Outcome:
    out = lab.fresh("sigterm-loading")
    command = [PYTHON, "train.py", "--dataset=fashion_mnist", f"--data_dir={FASHION}",
               f"--tfds_dir={lab.fresh('sigterm-tfds')}", *TRAIN_FLAGS, f"--output_dir={out}"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("Preparing fashion_mnist"):
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            break
    stdout, stderr = process.communicate(timeout=300)
    outcome = grade(subprocess.CompletedProcess(command, process.returncode, stdout, stderr), 143, "stopped by SIGTERM")
    return Outcome("FAIL", f"{out} left behind") if outcome.verdict == "PASS" and out.exists() else outcome


# ------------------------------------------------- issue 23: models predict cannot serve, and what it prints

FOREIGN_MODELS = """# Models predict cannot serve, each a SavedModel and a .tflite; an export of another width.
import sys
from pathlib import Path

import tensorflow as tf

from engine.deploy import export
from layers import mlp

root = Path(sys.argv[1])
weights = tf.Variable(tf.zeros([784, 10]))
for name, dtype, output in (("uint8", tf.uint8, "probabilities"), ("logits", tf.float32, "logits")):
    module = tf.Module()
    module.weights = weights

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], dtype, name="images")])
    def serve(images, output=output):
        return {output: tf.nn.softmax(tf.reshape(tf.cast(images, tf.float32), [-1, 784]) @ weights)}

    module.serve = serve
    tf.saved_model.save(module, str(root / name / "saved_model"), signatures={"serving_default": serve})
    (root / name / "model.tflite").write_bytes(
        tf.lite.TFLiteConverter.from_saved_model(str(root / name / "saved_model")).convert())
unranked = tf.Module()
unranked.serve = tf.function(lambda images: {"probabilities": tf.nn.softmax(tf.reshape(images, [-1, 10]))},
                             input_signature=[tf.TensorSpec(None, tf.float32, name="images")])
tf.saved_model.save(unranked, str(root / "unranked" / "saved_model"), signatures={"serving_default": unranked.serve})
model = mlp((8,), 10)
model.build((None, 28, 28))
export.export(model, (28, 28), [f"class {i}" for i in range(10)], str(root / "hidden8"))
"""


def _foreign(lab: Lab) -> Path:
    """Models of another contract than the export's (made once): a uint8 input, an output named
    `logits`, an input of unknown rank, and a whole export of an MLP 8 wide (the lab's are 16)."""
    folder = lab.root / "foreign"
    if not (folder / "hidden8" / "manifest.json").exists():
        result = lab.run("-c", FOREIGN_MODELS, str(folder))
        assert result.returncode == 0, result.stderr[-2000:]
    return folder


def _predict_worst(lab: Lab, models: List[Path], fragment: str) -> Outcome:
    """predict on each model: the first that is not refused with `fragment` is the verdict."""
    outcomes = [grade(lab.predict("--model", str(model), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz")),
                      2, fragment) for model in models]
    return next((outcome for outcome in outcomes if outcome.verdict != "PASS"), outcomes[0])


def probe_predict_uint8_input(lab: Lab) -> Outcome:
    folder = _foreign(lab) / "uint8"
    return _predict_worst(lab, [folder / "saved_model", folder / "model.tflite"], "takes uint8 images, not float32")


def probe_predict_output_not_probabilities(lab: Lab) -> Outcome:
    folder = _foreign(lab) / "logits"
    return _predict_worst(lab, [folder / "saved_model", folder / "model.tflite"], "returns logits, not 'probabilities'")


def probe_predict_input_of_unknown_rank(lab: Lab) -> Outcome:
    return _predict_worst(lab, [_foreign(lab) / "unranked" / "saved_model"],
                          "takes input of unknown rank, so the size of its images cannot be read from it")


probe_predict_help_says_to_trust_the_model = _command_probe("models you trust", 0, "-m",
                                                            "engine.deploy.predict", "--help")


def _hand_made(lab: Lab, name: str) -> Path:
    """A copy of the lab's export without its manifest: a folder put together by hand, which only
    the SavedModel's own reading can refuse (with the manifest, any change is refused first)."""
    folder = lab.fresh(name)
    shutil.copytree(lab.exported(), folder)
    (folder / "manifest.json").unlink()
    return folder


def probe_predict_cut_variables(lab: Lab) -> Outcome:
    cut, deleted = _hand_made(lab, "cut-variables"), _hand_made(lab, "deleted-variables")
    data = next((cut / "saved_model" / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    shutil.rmtree(deleted / "saved_model" / "variables")
    return _predict_worst(lab, [cut / "saved_model", deleted / "saved_model"], "the SavedModel is cut")


def probe_predict_graph_unlike_its_variables(lab: Lab) -> Outcome:
    folder = _hand_made(lab, "graph-unlike-variables")
    shutil.copy(_foreign(lab) / "hidden8" / "saved_model" / "saved_model.pb", folder / "saved_model" / "saved_model.pb")
    return _predict_worst(lab, [folder / "saved_model"], "its variables do not read back into its graph")


def probe_labels_with_escape_sequences(lab: Lab) -> Outcome:
    folder = _hand_made(lab, "labels-ansi")
    (folder / "labels.txt").write_text("".join(f"\x1b[31mclass {i}\x1b[0m\x1b]0;title\x07\n" for i in range(10)))
    result = lab.predict("--model", str(folder / "model.tflite"), "--images", str(lab.data_a / "t10k-images-idx3-ubyte.gz"))
    raw = (result.stdout + result.stderr).count("\x1b")
    return Outcome("FAIL", f"{raw} raw ESC bytes printed to the terminal") if raw else grade(result, 0, "\\x1b[31mclass")


def probe_predict_images_a_directory(lab: Lab) -> Outcome:
    result = lab.predict("--model", str(lab.exported() / "model.tflite"), "--images", str(lab.data_a))
    if "does not exist" in result.stderr:
        return Outcome("FAIL", f"a directory said not to exist: {result.stderr.strip()[-300:]}")
    return grade(result, 2, f"--images {lab.data_a} is a directory")


# ----------------------------------------------------------------- issue 23: a careful user's other tries

probe_tf_config_not_a_host = _command_probe(
    "does not start with a host name or an IP address", 2, "train.py", "--strategy=multi_worker", "--dataset=mnist",
    "--data_dir={root}/data_a", "--tfds_dir={root}/tfds", "--output_dir={root}/tf-config-out",
    env={"TF_CONFIG": '{"cluster": {"worker": ["not a host:2222"]}, "task": {"type": "worker", "index": 0}}'})


def probe_tf_config_port_taken(lab: Lab) -> Outcome:
    with socket.socket() as taken:  # another program listens on the port this worker is to serve on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}})
        return _command_probe(f"port {port} here is taken", 2, "train.py", "--strategy=multi_worker", "--dataset=mnist",
                              "--data_dir={root}/data_a", "--tfds_dir={root}/tfds", "--output_dir={root}/tf-config-out",
                              env={"TF_CONFIG": config})(lab)


def _free_ports(count: int) -> List[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def probe_multi_worker_peer_never_comes(lab: Lab) -> Outcome:
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    config = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 0}})
    started = time.monotonic()
    outcome = _command_probe(f"worker 1 ({addresses[1]}) never came", 1, "train.py", "--strategy=multi_worker",
                             "--collective_timeout=5", "--dataset=mnist", "--data_dir={root}/data_a",
                             "--tfds_dir={root}/tfds", "--output_dir={root}/lonely-worker", env={"TF_CONFIG": config})(lab)
    took = time.monotonic() - started
    return Outcome("WEAK", f"ended only after {took:.0f} s") if outcome.verdict == "PASS" and took > 60 else outcome


def probe_batch_size_a_billion(lab: Lab) -> Outcome:
    return grade(lab.train(lab.fresh("huge-batch"), "--batch_size=1000000000"), 0, "Wrote")  # batches of all 640


def probe_dataset_name_in_capitals(lab: Lab) -> Outcome:
    result = lab.train(lab.fresh("capitals"), "--dataset=Fashion_MNIST")
    if "apt-get install" in result.stdout + result.stderr:
        return Outcome("FAIL", f"asks to install what is installed: {result.stderr.strip()[-300:]}")
    return grade(result, 0, "Wrote") if result.returncode == 0 else grade(result, 2, "did you mean --dataset=fashion_mnist")


def probe_newline_in_an_output_path(lab: Lab) -> Outcome:
    out = lab.fresh("new\nline")
    process = lab.start_train(out, "--epochs=100000")
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "checkpoint").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    # The resume command writes the path as bash's $'...', so the one line still runs as it was.
    return grade(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), 143,
                 "$'--output_dir=" + str(out).replace("\n", "\\n") + "'")


def probe_fewer_epochs_refused_before_loading(lab: Lab) -> Outcome:
    out = lab.fresh("fewer-before-loading")
    assert lab.train(out, "--epochs=4").returncode == 0
    started = time.monotonic()
    result = lab.train(out, "--epochs=3")  # a new user's second command: the default output directory resumes
    slow = lab.refused_slowly(started, beyond_import=4)
    if "Data:" in result.stdout:
        return Outcome("FAIL", "refused only after the data were loaded")
    return grade(result, 2, "has 4 epochs trained, more than --epochs=3", weak_if=slow)


def probe_compare_keras_export_dir_and_lock(lab: Lab) -> Outcome:
    out = lab.fresh("compare-keras")
    refused = grade(lab.train(out, "--compare_keras", f"--export_dir={lab.fresh('compare-keras-export')}"), 2,
                    "exports neither: drop --export_dir")
    if refused.verdict != "PASS":
        return refused
    sys.path.insert(0, str(REPO))
    from engine.run import files

    with files.claim(str(out)):  # another live run holds the output directory
        return grade(lab.train(out, "--compare_keras"), 2, "is in use by another run")


def probe_graph_picture_names_its_own_flags(lab: Lab) -> Outcome:
    (lab.root / "a-file").write_text("")
    for flags, fragment in ((["--out=/dev/null/graph"], "--out /dev/null/graph"), (["--out=~/graph"], "--out ~/graph"),
                            ([f"--out={lab.root}/a-file"], f"--out {lab.root}/a-file is a file"),
                            (["--hidden=100000000", f"--out={lab.root}/graph"], "pass smaller --hidden")):
        result = lab.run("-m", "engine.tour.graph_picture", *flags)
        if "--output_dir" in result.stderr:
            return Outcome("FAIL", f"names --output_dir, a flag graph_picture does not have: {result.stderr.strip()[-300:]}")
        outcome = grade(result, 2, fragment)
        if outcome.verdict != "PASS":
            return outcome
    return outcome


def probe_tour_keeps_a_users_search(lab: Lab) -> Outcome:
    out = lab.fresh("tour-over-search")
    assert lab.search(out / "search").returncode == 0  # a real search of the user's, in the tour's place for it
    before = snapshot(out / "search")
    result = lab.run("-m", "engine.tour", "--sections=search", f"--output_dir={out}")
    return grade(result, 2, "holds trials of another setup", before, snapshot(out / "search"))


# ------------------------------------------------------------- issue 23: stops while children run

def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _left_behind(pid: int, mark: str) -> List[str]:
    """Live processes of `pid`'s process group or whose command line holds `mark` (zombies are gone)."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != "Z" and (int(stat[2]) == pid or int(stat[1]) == pid or mark in cmdline):
            left.append(f"{proc.name}: {cmdline[:80]}")
    return left


def _stopped_search(lab: Lab, name: str, signum: int, wait: float) -> Outcome:
    """`search --jobs=2` given `signum` `wait` s after it starts its workers; nothing of it may stay."""
    out = lab.fresh(name)
    command = [PYTHON, "-m", "engine.experiments.search", "--dataset=fashion_mnist", f"--data_dir={FASHION}",
               f"--tfds_dir={lab.fresh(name + '-tfds')}", "--train_subset=2000", "--folds=2", "--hidden", "8",
               "--epochs", "3", "--jobs=2", f"--output_dir={out}"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # a group of its own, as a terminal gives a command
    for line in process.stdout:
        if line.startswith("Search:"):
            break
    time.sleep(wait)
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # a terminal's Ctrl-C reaches the whole process group
    else:
        process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    time.sleep(2)
    left = _left_behind(process.pid, str(out))
    for pid in left:
        os.kill(int(pid.split(":")[0]), signal.SIGKILL)
    outcome = grade(subprocess.CompletedProcess(command, process.returncode, stdout, stderr), 128 + signum,
                    f"stopped by {signal.Signals(signum).name}")
    return Outcome("FAIL", f"left alive: {left}") if left else outcome


def probe_search_sigterm_takes_its_workers(lab: Lab) -> Outcome:
    return _stopped_search(lab, "search-sigterm", signal.SIGTERM, 6)


def probe_search_ctrl_c_while_workers_import(lab: Lab) -> Outcome:
    return _stopped_search(lab, "search-ctrl-c", signal.SIGINT, 1)


def probe_tour_notebook_ctrl_c(lab: Lab) -> Outcome:
    path = lab.fresh("course").with_suffix(".ipynb")
    command = [PYTHON, "-m", "engine.tour", f"--notebook={path}", "--sections=loop", f"--output_dir={lab.fresh('nb')}"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernel, deadline = None, time.monotonic() + 120
    while kernel is None and time.monotonic() < deadline:  # the kernel is a child of one of its threads
        for task in Path(f"/proc/{process.pid}/task").glob("*"):
            for child in (task / "children").read_text().split() if (task / "children").exists() else ():
                if b"ipykernel_launcher" in Path(f"/proc/{child}/cmdline").read_bytes():
                    kernel = int(child)
        time.sleep(0.2)
    time.sleep(4)  # the kernel imports TensorFlow or runs the section's cells
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    time.sleep(2)
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if kernel is None:
        return Outcome("FAIL", f"no kernel started: {stderr.strip()[-300:]}")
    if _alive(kernel):
        os.kill(kernel, signal.SIGKILL)
        return Outcome("FAIL", f"the kernel (pid {kernel}) outlived the program")
    if path.exists():
        return Outcome("FAIL", f"{path} written by a stopped run")
    if error_lines(stderr) != ["python -m engine.tour: stopped by SIGINT"]:
        return Outcome("FAIL", f"stderr is not the one stop line: {stderr.strip()[-300:]}")
    return grade(result, 130, "python -m engine.tour: stopped by SIGINT")


PROBES: Dict[str, Callable[[Lab], Outcome]] = {
    name[len("probe_"):]: function for name, function in sorted(globals().items()) if name.startswith("probe_")}


# The kinds of break issues 14 and 23 name, each tried by one or more probes; every probe is of one
# kind (tests/test_red_team.py checks it), so a new probe either tries a kind again or names a new one.
KINDS: Dict[str, List[str]] = {
    # issue 14
    "resume on other data": ["resume_on_other_data", "search_on_other_data"],
    "two runs in one output directory": ["two_runs_one_output_dir", "lock_of_a_killed_run"],
    "a damaged checkpoint index or checkpoint": ["garbage_index", "missing_index", "resume_from_a_chosen_checkpoint",
                                                 "corrupted_newest_names_the_intact_one", "resume_from_nothing",
                                                 "temp_checkpoint_folders"],
    "--noresume with a run that fails its checks": ["noresume_with_a_bad_flag_deletes_nothing",
                                                    "noresume_with_bad_data_deletes_nothing"],
    "a finite divergence": ["finite_divergence", "divergence_keeps_the_good_checkpoint"],
    "a cut or changed .tflite": ["truncated_tflite", "tflite_unlike_its_manifest"],
    "an unreadable data file or prepared copy": ["unreadable_data_file", "corrupted_prepared_cache"],
    "a setting or directory that cannot work": ["negative_seed", "search_negative_seed", "tiny_validation_split",
                                                "unusable_tensorboard_dir", "unusable_tfds_dir", "unusable_export_dir",
                                                "checkpoints_is_a_file", "home_unwritable_without_tfds_dir"],
    "a model too large for memory": ["model_too_large", "graph_picture_model_too_large"],
    "a full disk": ["full_disk_at_a_checkpoint", "full_disk_while_preparing_data", "unwritable_metrics_png",
                    "csv_on_a_full_disk"],
    "a labels.txt not UTF-8 or empty": ["labels_not_utf8", "labels_empty"],
    "a gzip bomb": ["gzip_bomb"],
    "a huge PNG": ["huge_png"],
    "an error line of thousands of characters": ["long_error_line", "long_output_path"],
    "fewer --epochs than the checkpoint holds": ["fewer_epochs_than_trained", "fewer_epochs_refused_before_loading"],
    "a failed run's empty output directory": ["failed_run_leaves_no_directory"],
    "a malformed search results.json": ["search_malformed_results", "search_results_of_wrong_types"],
    "a diverged search trial": ["search_diverged_trial"],
    "Ctrl-C or SIGTERM while the data loads": ["ctrl_c_while_loading", "sigterm_while_loading"],
    # issue 23
    "a link planted at an output": ["links_at_every_output", "checkpoints_is_a_link", "link_inside_checkpoints"],
    "a .lock that is a link or a directory": ["lock_is_a_link", "lock_is_a_directory"],
    "an export killed mid-way or mixed": ["export_killed_mid_way", "mixed_export"],
    "an output that is one of the run's inputs": ["csv_onto_its_own_input"],
    "an output path with a quoted ~ or a newline": ["tilde_in_an_output_path", "newline_in_an_output_path"],
    "a dataset name TFDS cannot take": ["dataset_with_a_dash", "dataset_empty", "dataset_unknown_version",
                                        "dataset_unknown_config", "dataset_name_in_capitals"],
    "a number float32 cannot hold": ["learning_rate_inf", "learning_rate_zero_in_float32", "momentum_one_in_float32"],
    "a batch larger than the data": ["batch_size_a_billion"],
    "an unwritable output of tour, launch or bench.report": ["tour_unwritable_output_dir", "launch_unwritable_log_dir",
                                                             "bench_report_unwritable_out"],
    "a command launch cannot find": ["launch_missing_command"],
    "a refusal naming a flag the program lacks": ["graph_picture_names_its_own_flags"],
    "a TF_CONFIG that cannot work": ["tf_config_workers_a_string", "tf_config_chief_absent", "tf_config_not_a_host",
                                     "tf_config_port_taken"],
    "a multi-worker peer that never comes": ["multi_worker_peer_never_comes"],
    "a model predict cannot serve": ["predict_uint8_input", "predict_output_not_probabilities", "predict_cut_variables",
                                     "predict_graph_unlike_its_variables", "predict_input_of_unknown_rank"],
    "a model from someone else, which runs when loaded": ["predict_help_says_to_trust_the_model"],
    "--images that is a directory": ["predict_images_a_directory"],
    "class names with terminal escapes": ["labels_with_escape_sequences"],
    "a stop while search's workers run": ["search_sigterm_takes_its_workers", "search_ctrl_c_while_workers_import"],
    "Ctrl-C while the notebook runs": ["tour_notebook_ctrl_c"],
    "the tour over a user's search results": ["tour_keeps_a_users_search"],
    "--compare_keras with an export or a held lock": ["compare_keras_export_dir_and_lock"],
}


def run(names: List[str], root: Path, print_fn=print) -> Dict[str, Outcome]:
    lab = Lab(root)
    outcomes = {}
    for name, probe in PROBES.items():
        if names and not any(word in name for word in names):
            continue
        started = time.monotonic()
        try:
            outcome = probe(lab)
        except Exception as error:  # a probe that cannot even set up is a failure of the program too
            outcome = Outcome("FAIL", f"the probe broke: {type(error).__name__}: {str(error)[:300]}")
        outcomes[name] = outcome
        print_fn(f"| {name:<44} | {outcome.verdict:<4} | {time.monotonic() - started:5.1f} s | {outcome.detail[:150]}")
    return outcomes


def main(argv: List[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="red_team_"))
    print(f"Red team in {root}\n")
    print(f"| {'probe':<44} | verdict | time | what happened")
    print(f"|{'-' * 46}|------|---------|---")
    outcomes = run(argv, root, lambda line: print(line, flush=True))
    counts = {verdict: sum(o.verdict == verdict for o in outcomes.values()) for verdict in ("PASS", "WEAK", "FAIL", "SKIP")}
    print(f"\n{len(outcomes)} probes: " + ", ".join(f"{count} {verdict}" for verdict, count in counts.items()))
    print(f"{len(PROBES)} probes in {len(KINDS)} kinds: " + "; ".join(KINDS))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if counts["FAIL"] or counts["WEAK"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

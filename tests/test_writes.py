"""Every file is written one way: whole or not at all, never through a link (issue 23).

First the rule, read from the source with `ast`: no program writes, renames, removes or makes a
file or directory but through engine/run/writes.py and engine/run/directories.py. Then the two
modules against what a suspicious user or a hostile machine does: a link at the destination
and at the temporary name, a read-only directory, a full disk (a 2 MB tmpfs, as root), an
interruption and a SIGKILL half-way, a lock file that is a link or a directory, a whole-directory
swap that fails or whose owner was killed.
"""

import ast
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from engine.errors import ConfigError
from engine.run import directories, files, swap, writes
from tests.conftest import REPO

MODULES = {"engine/run/writes.py", "engine/run/directories.py", "engine/run/swap.py"}  # they alone write directly
SOURCES = sorted(path for pattern in ("engine/**/*.py", "layers/**/*.py", "bench/**/*.py", "train.py")
                 for path in REPO.glob(pattern) if str(path.relative_to(REPO)) not in MODULES)
# What may write without the modules, each with the reason. Keep it short.
ALLOWED = {
    # A kernel switch (reset the peak-memory counter), not a file a program makes: it cannot be renamed onto.
    ("bench/memory.py", "open('/proc/self/clear_refs', 'w')"),
    # A message on the pipe between bench/peers.py and a worker process: a stream, not a file.
    ("bench/peer_process.py", "pickle.dump(message, stream)"),
}

CALLS = {"os.open", "os.replace", "os.rename", "os.renames", "os.remove", "os.unlink", "os.rmdir", "os.removedirs",
         "os.makedirs", "os.mkdir", "os.symlink", "os.link", "os.truncate", "os.mkfifo", "shutil.rmtree", "shutil.move",
         "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "json.dump", "pickle.dump", "np.save",
         "np.savez", "np.savez_compressed", "np.savetxt", "numpy.save", "nbformat.write", "tf.io.write_file",
         "tf.io.gfile.makedirs", "tf.io.gfile.rmtree", "tf.io.gfile.remove", "tf.io.gfile.rename", "tf.io.gfile.copy"}
METHODS = {"savefig", "write_text", "write_bytes", "mkdir", "rmdir", "unlink", "rename", "symlink_to", "hardlink_to",
           "touch", "tofile", "to_csv"}
OPENERS = {"open", "io.open", "gzip.open", "bz2.open", "lzma.open", "codecs.open", "tf.io.gfile.GFile"}  # mode 2nd


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def _writing_mode(call: ast.Call, position: int) -> bool:
    mode = next((keyword.value for keyword in call.keywords if keyword.arg == "mode"),
                call.args[position] if len(call.args) > position else None)
    if mode is None:
        return False  # the default is "r"
    return not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)) or any(c in mode.value for c in "wax+")


def writes_in(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, call) of every direct write in `path`'s source, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        if name.split(".")[0] in ("writes", "directories", "swap"):
            continue  # the modules' own functions
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if (name in CALLS or method in METHODS or (name in OPENERS and _writing_mode(node, 1))
                or (method == "open" and name not in OPENERS and name != "os.open" and _writing_mode(node, 0))):
            yield node.lineno, ast.unparse(node)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_write_goes_through_the_modules(path):
    relative = str(path.relative_to(REPO))
    found = [f"{relative}:{line}: {call}" for line, call in writes_in(path)
             if not any(relative == where and call.startswith(allowed) for where, allowed in ALLOWED)]
    assert not found, "write through engine.run.writes / engine.run.directories instead:\n" + "\n".join(found)


def test_the_rule_sees_every_kind_of_write(tmp_path):
    """The checker itself: each way of writing is found, reading is not, even inside a function."""
    source = tmp_path / "writer.py"
    source.write_text("def f(path, figure, mode):\n"
                      "    open(path, 'w'); open(path, mode=mode); open(path); open(path, 'rb')\n"
                      "    json.dump({}, file); json.dumps({}); figure.savefig(path); Path(path).write_text('x')\n"
                      "    os.replace(path, path); 'a'.replace('a', 'b'); shutil.rmtree(path); np.save(path, 1)\n"
                      "    Path(path).open('a'); Path(path).open(); gzip.open(path, 'wb'); os.makedirs(path)\n")
    found = [call.split("(")[0] for _, call in writes_in(source)]
    assert found == ["open", "open", "json.dump", "figure.savefig", "Path", "os.replace",
                     "shutil.rmtree", "np.save", "Path", "gzip.open", "os.makedirs"], found


# ------------------------------------------------------------------------------------------------ files

@pytest.fixture
def precious(tmp_path) -> Path:
    """A file outside the output directory, which no write may change."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text("precious\n")
    return path


def test_a_link_at_the_destination_is_replaced_never_followed(tmp_path, precious):
    out = tmp_path / "out"
    out.mkdir()
    (out / "history.json").symlink_to(precious)
    (out / "history.json.tmp").symlink_to(precious)  # the name the old writer used for its temporary file
    writes.write_json(str(out / "history.json"), {"epochs": []})
    assert precious.read_text() == "precious\n"
    assert not (out / "history.json").is_symlink() and json.loads((out / "history.json").read_text()) == {"epochs": []}
    assert sorted(os.listdir(out)) == ["history.json", "history.json.tmp"]


def test_a_link_planted_at_the_temporary_name_is_passed_over(tmp_path, precious, monkeypatch):
    """mkstemp's O_EXCL | O_NOFOLLOW: the first name it draws is taken by a link, so it draws another."""
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)  # the names mkstemp draws, in order
    (tmp_path / ".metrics.png.planted.tmp").symlink_to(precious)
    writes.write_bytes(str(tmp_path / "metrics.png"), b"png")
    assert precious.read_text() == "precious\n" and (tmp_path / "metrics.png").read_bytes() == b"png"
    assert (tmp_path / ".metrics.png.planted.tmp").is_symlink()


def test_an_interrupted_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    (tmp_path / "results.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with writes.atomic(str(tmp_path / "results.json")) as file:
            file.write(b"half of the new")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["results.json"] and (tmp_path / "results.json").read_text() == "old"


def test_a_writer_killed_half_way_leaves_the_old_file_whole(tmp_path):
    (tmp_path / "history.json").write_text("old")
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom engine.run import writes\n"
         "with writes.atomic(sys.argv[1]) as file:\n    file.write(b'new' * 1000); file.flush()\n"
         "    print('written', flush=True); time.sleep(60)\n", str(tmp_path / "history.json")],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "written\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert (tmp_path / "history.json").read_text() == "old"


def test_the_new_file_keeps_the_old_files_permissions_else_the_umask_s(tmp_path):
    (tmp_path / "kept.txt").write_text("old")
    os.chmod(tmp_path / "kept.txt", 0o640)
    writes.write_text(str(tmp_path / "kept.txt"), "new")
    writes.write_text(str(tmp_path / "new.txt"), "new")
    assert (tmp_path / "kept.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~writes.umask()


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    return os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                                capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only, as tests/red_team.py's full-disk probes)."""
    mount = tmp_path / "disk"
    if not _mount_tmpfs(mount, "size=2m"):
        pytest.skip(reason="cannot mount a tmpfs here (not root?): a full or read-only disk is not simulated")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_the_old_file_whole_and_no_temporary_file(small_disk):
    (small_disk / "results.json").write_text("old")
    with pytest.raises(OSError) as raised:
        writes.write_bytes(str(small_disk / "results.json"), b"\0" * (3 << 20))
    assert raised.value.errno == errno.ENOSPC
    assert os.listdir(small_disk) == ["results.json"] and (small_disk / "results.json").read_text() == "old"


def test_a_read_only_directory_is_an_error_and_changes_nothing(small_disk):
    (small_disk / "ranking.md").write_text("old")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(OSError) as raised:
        writes.write_text(str(small_disk / "ranking.md"), "new")
    assert raised.value.errno == errno.EROFS and (small_disk / "ranking.md").read_text() == "old"


def test_a_figure_is_saved_whole_through_no_link(tmp_path, precious):
    from engine.run import plots

    (tmp_path / "metrics.png").symlink_to(precious)
    plots.plot_history([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}], str(tmp_path / "metrics.png"))
    assert precious.read_text() == "precious\n"
    assert (tmp_path / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_log_is_made_under_a_fresh_name_so_never_through_a_link(tmp_path, precious):
    (tmp_path / "worker0.log").symlink_to(precious)
    with writes.open_log(str(tmp_path / "worker0.log")) as log:
        log.write("started\n")
    assert precious.read_text() == "precious\n" and (tmp_path / "worker0.log").read_text() == "started\n"


# ------------------------------------------------------------------------- a file the user names by a flag

def test_a_destination_the_user_names_is_refused_before_any_work_when_it_cannot_be_written_as_promised(
        tmp_path, precious):
    (tmp_path / "export" / "saved_model").mkdir(parents=True)
    (tmp_path / "export" / "model.tflite").write_bytes(b"model")
    (tmp_path / "link.csv").symlink_to(precious)
    inputs = [str(tmp_path / "export" / "model.tflite"), str(tmp_path / "export" / "saved_model")]
    for path, expected in [
            (tmp_path / "export" / "model.tflite", f"{tmp_path}/export/model.tflite, which this run reads"),
            (tmp_path / "export" / "saved_model" / "p.csv", f"is inside {tmp_path}/export/saved_model, which this run reads"),
            (tmp_path / "link.csv", f"is a symbolic link (to {precious})"),
            (tmp_path / "export", "is a directory: pass a file path"),
            (tmp_path / "missing" / "p.csv", "cannot be written (No such file or directory"),
            (Path("~/p.csv"), "starts with '~', which only a shell expands")]:
        with pytest.raises(ConfigError, match="^--csv ") as raised:
            writes.check_destination(str(path), "--csv", inputs)
        assert expected in str(raised.value)
    assert precious.read_text() == "precious\n" and (tmp_path / "export" / "model.tflite").read_bytes() == b"model"
    writes.check_destination(str(tmp_path / "export" / "predictions.csv"), "--csv", inputs)  # beside them: fine


def test_a_stream_the_user_names_is_written_straight_to(tmp_path):
    writes.check_destination("/dev/null", "--csv")
    with writes.destination("/dev/null") as stream:
        stream.write("rows\n")
    with pytest.raises(OSError) as raised:  # /dev/full: a disk that is always full
        with writes.destination("/dev/full") as stream:
            stream.write("rows\n")
    assert raised.value.errno == errno.ENOSPC


# --------------------------------------------------------------------------------------- directories

def test_a_path_starting_with_a_quoted_tilde_is_refused_and_nothing_is_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in ("~", "~/runs/x", "~root/x"):
        with pytest.raises(ConfigError, match=r"starts with '~', which only a shell expands .*: pass /"):
            with files.claim(path):
                pass
    directories.make_dirs("runs/~x", "--output_dir")  # a ~ inside a path is a name like another
    assert os.listdir(tmp_path) == ["runs"]


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_a_lock_file_that_is_not_a_file_is_refused_saying_what_it_is(tmp_path, precious, kind):
    out = tmp_path / "out"
    out.mkdir()
    lock = out / files.LOCK
    {"symlink": lambda: lock.symlink_to(precious), "directory": lock.mkdir, "fifo": lambda: os.mkfifo(lock)}[kind]()
    what = {"symlink": f"a symbolic link (to {precious})", "directory": "a directory", "fifo": "a named pipe"}[kind]
    with pytest.raises(ConfigError) as raised:
        with files.claim(str(out)):
            pass
    assert str(raised.value) == (f"--output_dir {out} cannot be used: {lock} is {what}, not the lock file a run "
                                 "keeps there: remove it, or pass another --output_dir")
    assert precious.read_text() == "precious\n"


def test_a_link_at_or_in_a_directory_a_program_makes_is_refused(tmp_path, precious):
    (tmp_path / "checkpoints").symlink_to(precious.parent)
    with pytest.raises(ConfigError, match="checkpoints is a symbolic link .* written only inside the directories named"):
        directories.check_subdirectory(str(tmp_path / "checkpoints"))
    (tmp_path / "checkpoints").unlink()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-3.index").symlink_to(precious)
    directories.check_subdirectory(str(tmp_path / "checkpoints"))
    with pytest.raises(ConfigError, match="ckpt-3.index is a symbolic link"):
        directories.check_subdirectory(str(tmp_path / "checkpoints"), contents=True)


def test_removing_a_link_removes_only_the_link(tmp_path, precious):
    (tmp_path / "search").symlink_to(precious.parent)
    directories.remove_tree(str(tmp_path / "search"))
    assert not os.path.lexists(tmp_path / "search") and precious.read_text() == "precious\n"


def _export(path: Path, version: str) -> None:
    with swap.replaced_directory(str(path), ("model.tflite", "labels.txt"), "--export_dir") as staging:
        Path(staging, "model.tflite").write_text(version)
        Path(staging, "labels.txt").write_text(version)


@pytest.mark.parametrize("exchange", ["renameat2", "three renames"])
def test_a_directory_is_replaced_as_a_whole_and_a_failure_leaves_the_old_one(tmp_path, precious, exchange, monkeypatch):
    if exchange == "three renames":  # as on a file system without RENAME_EXCHANGE: it answers EINVAL
        monkeypatch.setattr(swap, "_RENAME_EXCHANGE", 1 << 30)
    export = tmp_path / "export"
    _export(export, "old")
    (export / "labels.txt").unlink()
    (export / "labels.txt").symlink_to(precious)  # removed with the old export, never followed
    _export(export, "new")
    assert {name: (export / name).read_text() for name in os.listdir(export)} == {"model.tflite": "new", "labels.txt": "new"}
    assert precious.read_text() == "precious\n"
    with pytest.raises(RuntimeError):
        with swap.replaced_directory(str(export), ("model.tflite", "labels.txt"), "--export_dir") as staging:
            Path(staging, "model.tflite").write_text("newer, but never finished")
            raise RuntimeError("the converter failed")
    assert (export / "model.tflite").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["export", "outside"]


def test_what_a_killed_swap_left_beside_is_cleared_but_a_live_one_s_is_not(tmp_path):
    export = tmp_path / "export"
    _export(export, "old")
    dead = tmp_path / ".export.new-dead"
    dead.mkdir()
    (dead / "model.tflite").write_text("half")
    live = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                             "os.mkdir(sys.argv[1]); fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                             "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)\n",
                             str(tmp_path / ".export.new-live")], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline() == "held\n"
        _export(export, "new")
        assert sorted(os.listdir(tmp_path)) == [".export.new-live", "export"]
    finally:
        live.kill()
        live.wait(timeout=30)
    aside = tmp_path / ".export.old-killed"  # killed between the three renames' first two: the export is aside
    export.rename(aside)
    _export(export, "newer")  # puts it back, then replaces it; the dead run's directory goes too
    assert os.listdir(tmp_path) == ["export"] and (export / "labels.txt").read_text() == "newer"


def test_a_directory_that_holds_what_the_program_would_not_write_or_is_a_link_is_not_replaced(tmp_path, precious):
    export = tmp_path / "export"
    export.mkdir()
    (export / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"--export_dir .*export holds notes.txt, which it would not write: it is "
                                          "replaced as a whole"):
        _export(export, "new")
    (tmp_path / "link").symlink_to(precious.parent)
    with pytest.raises(ConfigError, match=r"link is a symbolic link .* pass a directory path of its own"):
        _export(tmp_path / "link", "new")
    assert (export / "notes.txt").read_text() == "mine" and os.listdir(precious.parent) == ["precious.txt"]


def test_a_link_planted_among_the_checkpoints_during_a_run_stops_the_next_save(tmp_path, precious):
    """TensorFlow writes ckpt-N.index itself, and would write through a link: every save looks first."""
    from engine.run.checkpoints import Position
    from tests.test_checkpoints import trainer_and_checkpointer

    _, checkpointer = trainer_and_checkpointer(tmp_path / "checkpoints", "graph")
    checkpointer.save(Position(epoch=1))
    (tmp_path / "checkpoints" / "ckpt-2.index").symlink_to(precious)
    with pytest.raises(ConfigError, match="ckpt-2.index is a symbolic link"):
        checkpointer.save(Position(epoch=2))
    assert precious.read_text() == "precious\n"


@pytest.mark.slow  # loads Fashion-MNIST; the rule above already keeps every deletion out of the tour's sections
def test_the_tours_search_deletes_no_search_it_did_not_make(tmp_path, fashion_mnist_dir):
    """`--output_dir=runs` puts the tour's search in runs/search: a real search there is refused, not deleted."""
    from engine import tour

    results = tmp_path / "search" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps({"setup": {"dataset": "fashion_mnist", "data_fingerprint": "0123456789abcdef"},
                                   "trials": {}}))
    before = results.read_bytes()
    with pytest.raises(ConfigError, match="holds trials of another setup"):
        tour.run("search", [].append, output_dir=str(tmp_path))
    assert results.read_bytes() == before and sorted(os.listdir(results.parent)) == [files.LOCK, "results.json"]

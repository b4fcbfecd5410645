"""The tour as a Jupyter notebook (`python -m engine.tour --notebook PATH`): built from the very cells
the terminal tour runs, executed in a kernel of this interpreter, printing the same numbers as the
terminal from the same seed, every code cell run and every figure inline."""

import base64
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import matplotlib.image
import nbformat
import pytest

from engine import tour
from engine.tour import course
from engine.tour.__main__ import main
from engine.tour.notebook import build, execute

DRAWING = [section for section in tour.SECTIONS
           if any("course.show(" in source for kind, source in tour.cells(section) if kind == "code")]


def section_cells(notebook, section):
    return [cell for cell in notebook.cells if cell.metadata.get("tags") == [section]]


def stdout_of(cells):
    return "".join(output.text for cell in cells for output in cell.get("outputs", [])
                   if output.output_type == "stream" and output.name == "stdout")


def test_the_notebook_holds_the_set_up_then_exactly_the_sections_cells_in_order():
    notebook = build(tour.SECTIONS, "runs/elsewhere")
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown" and "python -m engine.tour --notebook" in notebook.cells[0].source
    assert notebook.cells[1].source == tour.setup_source("runs/elsewhere")
    assert "course.OUTPUT_DIR = 'runs/elsewhere'" in notebook.cells[1].source
    built = [(cell.metadata.tags[0], cell.cell_type, cell.source) for cell in notebook.cells[2:]]
    assert built == [(section, kind, source) for section in tour.SECTIONS for kind, source in tour.cells(section)]
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("section", tour.SECTIONS)
def test_every_section_opens_with_its_explanation_and_has_code_that_compiles(section):
    cells = tour.cells(section)
    number = tour.SECTIONS.index(section) + 1
    assert cells[0][0] == "markdown" and cells[0][1].startswith(f"## {number}. ")
    code = [source for kind, source in cells if kind == "code"]
    assert code and all(source for source in code)
    for source in code:
        compile(source, section, "exec")
    assert not any(line.startswith("#") for kind, source in cells if kind == "markdown" for line in source.splitlines()
                   if not line.startswith("##")), "a markdown line kept its '# ' prefix"


def test_every_section_draws():
    assert DRAWING == list(tour.SECTIONS)


def test_the_terminal_runs_and_prints_the_same_code_cells():
    lines = []
    tour.run("graph", lines.append)
    text = "\n".join(lines)
    for kind, source in tour.cells("graph"):
        assert (textwrap.indent(source, "    ") if kind == "code" else source) in text


def test_terminal_and_notebook_print_the_same_numbers_from_the_same_seed(fashion_mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(course, "TRAIN_SUBSET", 1600)  # 50 steps: one progress line and the epoch's
    lines = []
    tour.run("loop", lines.append, output_dir=str(tmp_path))
    notebook = build(["loop"], str(tmp_path))
    notebook.cells.insert(2, nbformat.v4.new_code_cell("course.TRAIN_SUBSET = 1600"))
    assert execute(notebook) is None
    printed = [line for line in stdout_of(section_cells(notebook, "loop")).splitlines()
               if line.startswith(("step ", "epoch 1 "))]
    assert len(printed) == 2 and printed[1].startswith("epoch 1 (50 steps of 32 over 1,600 images): loss ")
    assert re.fullmatch(r"step   50: batch loss \d\.\d{4}, epoch so far: loss \d\.\d{4}, accuracy \d\.\d{4}", printed[0])
    terminal = [line for line in lines if line.startswith(("step ", "epoch 1 "))]
    assert terminal == printed


def test_a_failing_cell_stops_the_run_and_keeps_its_traceback():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"),
                                               nbformat.v4.new_code_cell("1 / 0"),
                                               nbformat.v4.new_code_cell("print('never')")])
    assert execute(notebook) == "ZeroDivisionError: division by zero"
    assert stdout_of(notebook.cells[:1]).strip() == sys.executable  # the kernel is this interpreter
    assert [output.output_type for output in notebook.cells[1].outputs] == ["error"]
    assert notebook.cells[2].execution_count is None and not notebook.cells[2].outputs


def kernel_of(pid: int, timeout: float = 60) -> int:
    """The pid of the Jupyter kernel process `pid` started (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [child for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]
        for child in children:  # any thread's: the kernel is started from the notebook's worker thread
            if b"ipykernel_launcher" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
        time.sleep(0.2)
    raise AssertionError(f"process {pid} started no kernel in {timeout} s")


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_stop_while_the_notebook_runs_is_one_line_its_exit_status_and_no_kernel_left(tmp_path, signum):
    """Ctrl-C (or SIGTERM) while the kernel runs a cell: the program's own stop, not nbclient's
    "Kernel died"; the kernel (in a session of its own, which the terminal's Ctrl-C never reaches)
    is gone with the program, and no half-executed notebook is written."""
    path = tmp_path / "course.ipynb"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "engine.tour", f"--notebook={path}", "--sections=loop",
                                f"--output_dir={tmp_path / 'out'}"], cwd=Path(tour.__file__).parents[2], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kernel = kernel_of(process.pid)
        time.sleep(4)  # the kernel is importing TensorFlow or running the section's cells
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr[-3000:]
    assert stderr == f"python -m engine.tour: stopped by {signal.Signals(signum).name}\n" and stdout == ""
    deadline = time.monotonic() + 5
    while alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(kernel), "the kernel outlived the program"
    assert not path.exists()


def test_a_stop_takes_back_nbclients_exit_time_cleanup_so_nothing_prints_after_the_stop_line():
    """nbclient registers a cleanup to run at exit before it starts the kernel and removes it only
    when the cells are done; a stop (above all during the kernel's start) left it to run after the
    program's one line, printing a traceback on the kernel already killed. A stand-in client that
    registers it and is stopped mid-cell: at exit nothing runs."""
    script = textwrap.dedent('''
        import atexit, os, signal, threading, time
        from engine.tour import notebook

        class Client:  # what _drive uses of nbclient's NotebookClient
            def _cleanup_kernel(self):
                print("nbclient's cleanup ran at exit")

            def execute(self, env):
                atexit.register(self._cleanup_kernel)  # as NotebookClient.async_setup_kernel does
                time.sleep(60)  # a kernel starting, a cell running

        class Manager:
            provisioner = None  # no kernel process to kill

        notebook.KERNEL_STOP_SECONDS = 1
        # As a program's boundary does: a process started in a shell's background inherits SIGINT
        # ignored, and Python then installs no KeyboardInterrupt for it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(1, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            notebook._drive(Client(), Manager(), {})
        except KeyboardInterrupt:
            print("stopped")
    ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(tour.__file__).parents[2], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.stdout == "stopped\n" and result.returncode == 0, result.stdout + result.stderr[-2000:]


@pytest.mark.slow
def test_the_whole_course_executes_with_every_output_and_figure(fashion_mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # --output_dir is relative: the kernel starts where the command runs
    assert main(["tour", "--notebook=course.ipynb", "--output_dir=figures"]) == 0
    assert re.search(rf"Wrote course.ipynb: {len(tour.SECTIONS)} sections, executed in \d+ s", capsys.readouterr().out)
    notebook = nbformat.read(tmp_path / "course.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.scratchflow["sections"] == list(tour.SECTIONS)
    for section in tour.SECTIONS:
        code = [cell for cell in section_cells(notebook, section) if cell.cell_type == "code"]
        assert code and all(cell.execution_count for cell in code), section
        assert not [output for cell in code for output in cell.outputs if output.output_type == "error"], section
        assert all(cell.outputs for cell in code), f"{section}: a code cell printed and showed nothing"
        pictures = [output.data["image/png"] for cell in code for output in cell.outputs if "image/png" in output.get("data", {})]
        assert pictures, f"{section} shows no figure"
        for picture in pictures:
            pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(picture)), format="png")
            assert pixels.shape[0] > 200 and pixels.std() > 0.01, section  # decodes, and is not blank
    assert "accuracy" in stdout_of(section_cells(notebook, "fit")) and "tflite" in stdout_of(section_cells(notebook, "export"))
    assert (tmp_path / "figures" / "export" / "model.tflite").is_file()

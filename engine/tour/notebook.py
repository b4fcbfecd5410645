"""The tour as a Jupyter notebook, executed, outputs and figures saved: `python -m engine.tour --notebook PATH`.

The notebook is made of the same cells the terminal tour runs (`engine.tour.cells`), turned into
notebook cells with nbformat, each tagged with its section's name; then nbclient executes it
top to bottom and the file is written with every output in it, figures inline as PNG.

The kernel is this interpreter: a kernelspec pointing at `sys.executable` is written to a
temporary directory and handed to the kernel manager, so the notebook runs with the packages of
the environment that ran the command, on a machine with no Jupyter kernel installed, whatever
`python3` kernel a user may have elsewhere. The kernel starts in the current directory with this
`engine` first on its path, so it imports the same code the terminal tour would, and relative
paths (`--output_dir`) mean the same in both.
"""

import atexit
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from engine import tour
from engine.run import quiet, writes

KERNEL = "scratchflow-tour"  # the temporary kernelspec's name; the saved notebook names the usual python3
TIMEOUT = 600  # seconds one cell may take: the search is the longest, well under a minute on 2 cores
KERNEL_STOP_SECONDS = 30  # how long a stop waits for the kernel to be gone (a start-up takes a few seconds)
INTRODUCTION = """# scratchflow: how training works, run on the engine

Written by `python -m engine.tour --notebook PATH` from the tour's sections (`engine/tour/sections/`),
the same cells `python -m engine.tour` runs in a terminal, and executed top to bottom. Each
section stands alone: run its cells in order. Figures and the exported model are written to
`course.OUTPUT_DIR` (the cell below)."""


def build(sections: Sequence[str] = tour.SECTIONS, output_dir: str = "runs/tour") -> nbformat.NotebookNode:
    """The unexecuted notebook: an introduction, the set-up cell, then every cell of `sections`."""
    cells = [nbformat.v4.new_markdown_cell(INTRODUCTION),
             nbformat.v4.new_code_cell(tour.setup_source(output_dir), metadata={"tags": ["setup"]})]
    for section in sections:
        new_cell = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
        cells += [new_cell[kind](source, metadata={"tags": [section]}) for kind, source in tour.cells(section)]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.metadata.language_info = {"name": "python"}
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = TIMEOUT) -> Optional[str]:
    """Runs every cell in a fresh kernel of this interpreter, saving outputs into `notebook`.

    Returns:
      None if every cell ran; else the failing cell's error in one line (its traceback is saved
      in the cell's outputs, and the cells after it are not run).
    """
    engine_root = str(Path(tour.__file__).resolve().parents[2])  # the directory holding this `engine`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [engine_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as kernels:
        write_kernel_spec(os.path.join(kernels, KERNEL))  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
        manager = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        # TensorFlow's C++ start-up lines go to the terminal, not into a cell: the kernel imports
        # TensorFlow first through engine/startup.py, as the terminal tour does, so only real warnings
        # show. The kernel's own warnings (a local kernel over TCP is "unencrypted") are noise here.
        client = NotebookClient(notebook, km=manager, timeout=timeout, resources={"metadata": {"path": os.getcwd()}},
                                shutdown_kernel="immediate",
                                extra_arguments=["--IPKernelApp.capture_fd_output=False", "--IPKernelApp.log_level=ERROR",
                                                 "--IPKernelApp.exec_lines=['from engine import startup', "
                                                 "'startup.import_tensorflow()']"])
        return _drive(client, manager, env)


def _drive(client: NotebookClient, manager: AsyncKernelManager, env: dict) -> Optional[str]:
    """Runs the notebook in a worker thread; a stop (Ctrl-C, SIGTERM) reaches the main thread only.

    nbclient, run on the main thread, puts its own SIGINT and SIGTERM handlers on the event loop
    in place of the program's (engine/run/interrupts.py): they shut the kernel down and leave
    nbclient to fail with "Kernel died", so a Ctrl-C read as an unexpected DeadKernelError,
    exit 1. Off the main thread nbclient cannot install them (asyncio refuses) and leaves signals
    alone: the program's handler raises `Stopped` in the main thread, waiting here; the kernel
    (a process group of its own, so the terminal's Ctrl-C never reached it) is killed, the worker
    ends on the dead kernel, and the stop goes on to the program's boundary: one line, 130 or 143.

    nbclient also registers an exit-time cleanup (`atexit`) before it starts the kernel, and takes
    it back only once the cells have run: after a stop (during the kernel's start, above all) it
    would run at the interpreter's exit, after the program's one line, and print its own
    traceback on the kernel already killed here. So a stop unregisters it: the kill is the cleanup.
    """
    outcome: dict = {}

    def execute_all() -> None:
        try:
            client.execute(env=env)
        except BaseException as error:  # noqa: B036 -- handed to the main thread, which decides
            outcome["error"] = error

    worker = threading.Thread(target=execute_all, name="notebook", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:  # `Stopped` (SIGINT, SIGTERM): the kernel goes, then the stop goes on
        quiet.set_logger_level("traitlets", logging.CRITICAL)  # nbclient's "Kernel died while waiting": ours
        deadline = time.monotonic() + KERNEL_STOP_SECONDS
        while worker.is_alive() and time.monotonic() < deadline:
            _kill_kernel(manager)  # again while it runs: a stop during the kernel's start finds no kernel yet
            worker.join(0.5)
        atexit.unregister(client._cleanup_kernel)  # nbclient's exit-time cleanup: done above (docstring)
        raise
    error = outcome.get("error")
    if isinstance(error, CellExecutionError):
        return f"{error.ename}: {error.evalue}"  # its traceback is in the cell's outputs
    if error is not None:
        raise error
    return None


def _kill_kernel(manager: AsyncKernelManager) -> None:
    """SIGKILL to the kernel's process group, if it has started (its children go with it)."""
    process = getattr(manager.provisioner, "process", None) if manager.provisioner else None
    if process is not None and process.poll() is None:
        try:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def write(path: str, sections: Sequence[str] = tour.SECTIONS, output_dir: str = "runs/tour") -> Tuple[float, Optional[str]]:
    """Builds, executes and writes the notebook to `path`; returns (seconds executing, error or None).

    The file is written even when a cell fails, so its traceback can be read where it happened;
    whole or not at all, and `path` is checked before the minutes of executing (engine/run/writes.py).
    """
    writes.check_destination(path, "--notebook")
    notebook = build(sections, output_dir)
    start = time.perf_counter()
    error = execute(notebook)
    seconds = time.perf_counter() - start
    notebook.metadata.scratchflow = {"sections": list(sections), "seconds": round(seconds, 1), "python": sys.version.split()[0]}
    nbformat.validate(notebook)
    with writes.destination(path, "w", encoding="utf-8") as file:
        file.write(nbformat.writes(notebook).rstrip("\n") + "\n")
    return seconds, error

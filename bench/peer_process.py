"""The controller's end of a worker process (bench/peer_worker.py): start it, ask it, stop it.

A worker that fails, at start-up or on a request, raises `PeerFailed` with its last lines, so the
experiment reports that setting in one line and goes on with the others.
"""

import collections
import importlib.util
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
# framework -> the modules it needs beyond the project's own dependencies
REQUIRES = {"engine": (), "keras": (), "jax": ("jax", "flax", "optax"), "torch": ("torch",)}
INSTALL_HINT = "pip install -e '.[peers]'"


def send(stream, message: tuple) -> None:
    """One pickled message on a pipe between the controller and a worker: a stream, never a file."""
    pickle.dump(message, stream)
    stream.flush()


class PeerFailed(RuntimeError):
    """A worker died or answered with an error; the message is its last lines."""


def missing(framework: str) -> Optional[str]:
    """None when `framework` can be imported here, else the one line the report prints instead."""
    absent = [name for name in REQUIRES[framework] if importlib.util.find_spec(name) is None]
    return f"not installed ({INSTALL_HINT}: no {', '.join(absent)})" if absent else None


class Worker:
    """One `python -m bench.peer_worker FRAMEWORK` process, its stderr kept (last 40 lines) for errors."""

    def __init__(self, framework: str, environment: Optional[dict] = None):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(environment or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.framework, self.environment = framework, dict(environment or {})
        self.process = subprocess.Popen([sys.executable, "-m", "bench.peer_worker", framework], cwd=REPO, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr: collections.deque = collections.deque(maxlen=40)
        threading.Thread(target=self._drain, daemon=True).start()
        self.versions: Optional[dict] = None

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())

    def ready(self) -> dict:
        """Waits for the worker's start-up (its framework imported, the data read); its versions."""
        if self.versions is None:
            self.versions = self._answer()["versions"]
        return self.versions

    def ask(self, command: str, **arguments) -> dict:
        """Sends one request and returns the answer's body."""
        self.ready()
        try:
            send(self.process.stdin, (command, arguments))
        except (BrokenPipeError, OSError):
            raise PeerFailed(self._last_words()) from None
        return self._answer()

    def _answer(self) -> dict:
        try:
            kind, body = pickle.load(self.process.stdout)
        except (EOFError, pickle.UnpicklingError):
            raise PeerFailed(self._last_words()) from None
        if kind == "error":
            raise PeerFailed(body["text"].strip())
        return body

    def _last_words(self) -> str:
        self.process.poll()
        lines = "\n".join(list(self.stderr)[-12:])
        return f"the {self.framework} worker stopped (exit status {self.process.returncode})\n{lines}"

    def close(self) -> None:
        """Asks the worker to quit; ends it if it does not within 30 s."""
        if self.process.poll() is None:
            try:
                send(self.process.stdin, ("quit", {}))
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def start(settings: Sequence, environment: Optional[dict] = None,
          environment_of: Callable[[object], dict] = lambda setting: {}) -> tuple:
    """A worker per setting (`.name`, `.framework`) whose framework is installed, all starting at once,
    with `environment` and the setting's own (`environment_of`); returns ({name: Worker}, {name: why not})."""
    workers, skipped = {}, {}
    for setting in settings:
        reason = missing(setting.framework)
        if reason:
            skipped[setting.name] = reason
        else:
            workers[setting.name] = Worker(setting.framework, {**(environment or {}), **environment_of(setting)})
    for name in list(workers):
        try:
            workers[name].ready()
        except PeerFailed as failure:
            skipped[name] = f"failed to start: {failure}"
            workers.pop(name).close()
    return workers, skipped


def close(workers: Dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.close()

"""Starts N multi-worker processes on this machine, each with its TF_CONFIG, and waits for them.

    python -m engine.distribute.launch --workers=2 -- python train.py --strategy=multi_worker --epochs=1

Each worker gets the same command and a TF_CONFIG naming the same cluster of free
127.0.0.1 ports and its own index: exactly what each machine of a real cluster gets (BUILD.md
has the two-machine command). Every wait is bounded: a worker that fails gives the others
`grace` seconds to notice and stop on their own (their error says why), then they are killed;
and the whole run is killed after `timeout` seconds. Worker i's output goes to
`<log_dir>/worker<i>.log`.

Exit status: 0 when every worker exited 0, 1 when one failed or was killed, 2 after one
`launch: error: ...` line (a bad flag, no command or one not found, an unusable --log_dir);
130/143 when the launcher itself is stopped, its workers killed with it (engine/run/program.py).
"""

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

from absl import flags

from engine.errors import ConfigError
from engine.run import cli, directories, program, writes

PROGRAM = "launch"
FLAGS = cli.new_flag_values()
flags.DEFINE_integer("workers", 2, "Worker processes.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_float("timeout", 3600.0, "Seconds before all workers are killed.", lower_bound=0.0, flag_values=FLAGS)
flags.DEFINE_float("grace", 120.0, "Seconds the others may run after one fails.", lower_bound=0.0, flag_values=FLAGS)
flags.DEFINE_string("log_dir", "runs/launch", "Directory for worker<i>.log.", flag_values=FLAGS)
program.start(PROGRAM, FLAGS, __name__)


@dataclasses.dataclass
class Worker:
    index: int
    process: subprocess.Popen
    log: str
    seconds: Optional[float] = None  # from launch to exit; None while running (or if killed)
    killed: bool = False

    @property
    def returncode(self) -> Optional[int]:
        return self.process.returncode


def free_ports(count: int) -> List[int]:
    """`count` distinct ports that were free on 127.0.0.1 a moment ago (held open together)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(addresses: Sequence[str], index: int) -> str:
    """The TF_CONFIG of worker `index` in a cluster of `addresses` (host:port, one per worker)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def launch(command: Sequence[str], workers: int, log_dir: str, timeout: float = 600.0,
           grace: float = 120.0, on_start: Callable[[List[Worker]], None] = lambda workers: None) -> List[Worker]:
    """Runs `command` as `workers` workers of one cluster; returns them once all have exited.

    Args:
      command: the program and its arguments, the same for every worker.
      workers: how many worker processes.
      log_dir: where worker<i>.log files go.
      timeout: seconds before every worker still running is killed.
      grace: seconds the others may run on after one worker exits with an error.
      on_start: called with the workers once all are started (a test kills one from it).
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    directories.make_dirs(log_dir, "--log_dir")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    start = time.monotonic()
    running = []
    for index in range(workers):
        log = os.path.join(log_dir, f"worker{index}.log")
        with writes.open_log(log) as output:
            env = {**os.environ, "TF_CONFIG": tf_config(addresses, index)}
            process = subprocess.Popen(list(command), env=env, stdout=output, stderr=subprocess.STDOUT)
        running.append(Worker(index, process, log))
    try:
        on_start(running)
        deadline = start + timeout
        while any(worker.seconds is None for worker in running) and time.monotonic() < deadline:
            for worker in running:
                if worker.seconds is None and worker.process.poll() is not None:
                    worker.seconds = time.monotonic() - start
                    if worker.returncode != 0:
                        deadline = min(deadline, time.monotonic() + grace)
            time.sleep(0.1)
    finally:  # also on SIGTERM or Ctrl-C to the launcher: its workers end with it
        for worker in running:
            if worker.seconds is None and worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=30)
                worker.killed = True
    return running


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`launch [--flags] -- COMMAND...` (argv[0] is the program); returns the exit status."""
    argv = list(sys.argv if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []

    def start_workers() -> int:
        if not command:
            raise ConfigError("no command: put it after --, e.g. -- python train.py --strategy=multi_worker")
        if shutil.which(command[0]) is None:
            raise ConfigError(f"the command {command[0]} is not found or not executable: pass a program on PATH or "
                              "its path, e.g. -- python train.py --strategy=multi_worker")
        done = launch(command, FLAGS.workers, FLAGS.log_dir, FLAGS.timeout, FLAGS.grace)
        for worker in done:
            status = "killed (timeout)" if worker.killed else f"exit status {worker.returncode} after {worker.seconds:.1f}s"
            print(f"worker {worker.index}: {status}; log {worker.log}")
        return 0 if all(worker.returncode == 0 for worker in done) else 1

    return program.run(PROGRAM, FLAGS, argv[:len(argv) - len(command) - ("--" in argv)], start_workers,
                       outputs=("log_dir",))


if __name__ == "__main__":
    sys.exit(main())

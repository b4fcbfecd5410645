"""TF_CONFIG, checked before a multi-worker run waits on it, and a deadline on the wait for the peers.

`MultiWorkerMirroredStrategy` reads TF_CONFIG and then waits, in C++, for every worker of the
cluster to answer; what it cannot use it either misreads or waits on forever. So the cluster is
checked first (`check`), each problem one line naming the fix:

- `cluster` maps each job ("worker", "chief") to a list of "host:port" strings (workers given
  as one string would be read as a list of characters);
- the task's type is one of the cluster's jobs, and its index is in range ("chief" absent
  from the cluster is a task nobody can reach);
- every address has a host (a name or an IP address, not "not a host") and a port in
  1..65535, and this worker's own port is free here (another program on it would make
  TensorFlow's server fail to start, after the peers began to wait for it).

Host names are not resolved: offline, a lookup can hang for its own timeout.

A peer that never comes leaves the strategy's constructor waiting in C++, holding the GIL,
where no signal handler, no Python thread and no `--collective_timeout` reaches it.
`deadline` ends the process after that many seconds with one line naming the worker that never
came: the first one whose address accepts no connection (each worker's TensorFlow server
listens once it has started).
Free of TensorFlow, so that tests can check a TF_CONFIG in milliseconds.
"""

import contextlib
import faulthandler
import ipaddress
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

from engine.errors import ConfigError
from engine.run import directories

_HOST = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_EXAMPLE = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'


def check(raw: Optional[str]) -> Optional[Tuple[Dict[str, List[str]], str, int]]:
    """The cluster, task type and index TF_CONFIG `raw` names (None without one), once each is known to work.

    Raises:
      ConfigError: what is wrong with TF_CONFIG, in one line (see the module docstring).
    """
    if raw is None:
        return None  # no cluster: one worker, which is valid (and what a laptop test does)
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        kind, index = task.get("type", "worker"), task["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not valid ({type(error).__name__}: {error}): expected JSON like {_EXAMPLE}") from None
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(f"TF_CONFIG's cluster must map job names to address lists, got {cluster!r}: expected {_EXAMPLE}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
            raise ConfigError(f"TF_CONFIG's cluster.{job} must be a list of \"host:port\" strings, got "
                              f"{type(addresses).__name__} {addresses!r}: write [\"host:port\", ...]")
        for address in addresses:
            _check_address(job, address)
    if kind not in cluster:
        raise ConfigError(f"TF_CONFIG's task type {kind!r} is not a job of its cluster ({', '.join(cluster)}): add "
                          f"the {kind} to the cluster, or give the task one of its types")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG task index {index!r} is out of range for {len(cluster[kind])} {kind}s "
                          f"(0..{len(cluster[kind]) - 1})")
    _check_port_free(cluster[kind][index], kind, index)
    return cluster, kind, index


def output_dir(output_dir: str, raw: Optional[str]) -> str:
    """Where this process of a multi-worker run writes: the chief (worker 0, or the only process)
    writes `output_dir`; worker i > 0 writes `output_dir/worker<i>`, so no two processes write the
    same file, and each worker's history can be compared. Read from TF_CONFIG `raw` (checked)
    before TensorFlow loads, as `MultiWorkerMirroredStrategy`'s resolver reads the task index."""
    found = check(raw)
    index = found[2] if found else 0
    return output_dir if not index else os.path.join(output_dir, f"worker{index}")


def _check_address(job: str, address: str) -> None:
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:2222
    if not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ConfigError(f"TF_CONFIG's {job} address {address!r} has no port in 1..65535: write host:port")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if re.fullmatch(r"[\d.]+", host) or not _HOST.fullmatch(host):
        raise ConfigError(f"TF_CONFIG's {job} address {address!r} does not start with a host name or an IP "
                          "address: write host:port, e.g. 10.0.0.2:2222")


def _check_port_free(address: str, kind: str, index: int) -> None:
    """Refuses this worker's own port when another program already listens on it here."""
    port = int(address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError as error:
            raise ConfigError(f"TF_CONFIG's {kind} {index} is {address}, but port {port} here is taken "
                              f"({error.strerror}): stop what uses it, or give this worker another port") from None


@contextlib.contextmanager
def deadline(seconds: float, cluster: Dict[str, List[str]], kind: str, index: int) -> Iterator[None]:
    """Ends the process with one line and exit status 1 if the block (the wait for every peer) takes over `seconds`.

    The wait holds Python's GIL, so no thread of this process can act: a watchdog process
    (`watch`) says which peer never came, and faulthandler's own C thread ends this one a moment
    later (`_exit(1)`), its traceback going to a log file rather than the terminal.
    """
    from engine.run import program, writes

    peers = [f"{job} {number} {address}" for job, addresses in cluster.items()
             for number, address in enumerate(addresses) if (job, number) != (kind, index)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    watchdog = subprocess.Popen([sys.executable, "-c", "from engine.distribute.cluster import watch; watch()",
                                 f"{seconds:g}", program.running(), *peers], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, cwd=root)
    log_path, log = writes.new_file(tempfile.gettempdir(), "scratchflow-start-up-", ".log")
    faulthandler.dump_traceback_later(seconds + 3, exit=True, file=log)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        watchdog.stdin.close()  # the watchdog's cue: the wait is over
        watchdog.wait()
        log.close()
        directories.remove_file(log_path)


def watch() -> None:
    """The watchdog of `deadline`: argv is SECONDS PROGRAM then "JOB NUMBER HOST:PORT" of each peer."""
    seconds, program, peers = float(sys.argv[1]), sys.argv[2], [peer.split(" ") for peer in sys.argv[3:]]
    if select.select([sys.stdin], [], [], seconds)[0]:
        return  # the parent's wait ended (or the parent died): nothing to say
    missing = next((f"{job} {number} ({address})" for job, number, address in peers if not _answers(address)),
                   "a worker of TF_CONFIG's cluster")
    print(f"{program}: error: {missing} never came: the cluster did not assemble within {seconds:g} s "
          "(--collective_timeout); start every worker TF_CONFIG names, with the same cluster, or check their "
          "addresses", file=sys.stderr, flush=True)


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
        return True
    except OSError:
        return False

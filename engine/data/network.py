"""Is the network there? Asked before a download, so that offline we fail in seconds.

TFDS retries a failing download for minutes before giving up; one TCP probe with a short
timeout answers the same question at once.
"""

import contextlib
import socket
import threading
from typing import Tuple

# A host TFDS downloads from (the CVDF mirror of MNIST, TFDS's own bucket): if it does not
# answer, no TFDS download will succeed either.
TFDS_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 3.0


def reachable(address: Tuple[str, int], timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `address` (host, port) opens within `timeout_s`.

    Run in a thread because the socket's timeout does not cover the DNS lookup, which can
    hang far longer when a resolver is configured but unreachable.
    """
    connected = threading.Event()

    def probe() -> None:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=timeout_s).close()
            connected.set()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return connected.is_set()

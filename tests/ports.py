"""Ports for tests, without the race of a port freed and then used.

A port found by binding port 0 and closing the socket is free only until another process
(a parallel test file, the coordinator's benchmarks) takes it: a test that needs it to stay
closed then finds a server there, and a server started on it finds it taken.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: Sockets that hold a refusing port for the rest of the test process.
_HELD: list[socket.socket] = []


def refusing_socket() -> socket.socket:
    """A socket bound to a port of 127.0.0.1 that never listens, held for the test process.

    Linux answers a connection to a bound port that nobody listens on with a reset (connection
    refused), and no other process can bind the port while the socket holds it (it has neither
    SO_REUSEADDR nor SO_REUSEPORT). ``listen()`` on it turns the port into a listening one.
    """
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    _HELD.append(held)
    return held


def refusing_port() -> int:
    """The port of a ``refusing_socket()``: connections to it are refused while the tests run."""
    return refusing_socket().getsockname()[1]


def start_server(start: Callable[[int], subprocess.Popen], ready: Callable[[int], bool], what: str,
                 log: Path | None = None, attempts: int = 5, hang_guard: float = 60) -> tuple[subprocess.Popen, int]:
    """Start a server that cannot be told to bind port 0 and say which port it took (redis-server,
    scrapyd, pywb's ``wayback``) on a port free a moment ago; on another if it exits before it is
    ``ready`` (another process took the port in between). Returns the server and its port; a
    failure quotes the end of the server's ``log``."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = start(port)
        deadline = time.monotonic() + hang_guard
        while proc.poll() is None and not ready(port):
            if time.monotonic() > deadline:
                proc.terminate()
                proc.wait(timeout=30)
                pytest.fail(f"{what} did not start on port {port}{_tail(log)}")
            time.sleep(0.1)
        if proc.poll() is None:
            return proc, port
    pytest.fail(f"{what} exited before it was ready, on {attempts} ports in a row{_tail(log)}")


def _tail(log: Path | None) -> str:
    return ":\n" + log.read_text(errors="replace")[-3000:] if log and log.exists() else ""

"""The processes a run starts (engines, nginx): each in its own session, so that its
whole process group is stopped when its run ends, on Ctrl-C, SIGTERM or SIGHUP, and at
exit; and the requests that tell when one answers."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from loadtest.bench import pinning
from loadtest.bench.engines import HOST
from loadtest.bench.settings import BenchError

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0  # seconds for an engine (or nginx) to answer after it is started
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL

_PROCESSES: list[subprocess.Popen] = []


def spawn(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cpu: int | None = None
) -> subprocess.Popen:
    """Start ``argv`` in its own session (so a whole tree can be stopped), output to
    ``log``, pinned to ``cpu`` (with everything it forks) unless that is None."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pinning.affinity(cpu),
        )
    _PROCESSES.append(proc)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """``sig`` to the process, up to STOP_TIMEOUT to exit, then SIGKILL to its whole group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers: workers, helper processes
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)
    if proc in _PROCESSES:
        _PROCESSES.remove(proc)


def stop_all() -> None:
    """Stop every process spawn() started that is still registered, newest first."""
    for proc in reversed(list(_PROCESSES)):
        stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request to loopback ``port``: (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_answers(port: int, procs: Sequence[subprocess.Popen], log: Path) -> None:
    """GET / on ``port`` until 200 (every app the bench serves answers it, nginx-static
    too); BenchError if a process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise BenchError(f"{proc.args[:4]} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(port, "GET", "/")[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"nothing answered on port {port} within {START_TIMEOUT:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

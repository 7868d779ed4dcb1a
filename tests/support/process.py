"""The conformance suite's harness: real ``python -m wsgistack`` processes on
free loopback ports, and a raw-socket client whose responses are parsed by h11
(a strict, independent HTTP/1.1 implementation, so our framing is checked too).
The conftest fixtures, the test modules and tests/frameworks import it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h11

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IO_TIMEOUT = 10.0  # seconds any single socket operation of a test may wait
BOOT_TIMEOUT = 20.0  # seconds for a server to accept connections


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """One running server process (master and workers)."""

    args: list[str]
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    unix: str | None = None
    proc: subprocess.Popen | None = None
    expected: list[str] = field(default_factory=list)

    def start(self, env: dict[str, str] | None = None, app: str = "recorder:application") -> None:
        full_env = {
            **os.environ,
            "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        for name in list(full_env):
            if name.startswith(("SERVER_", "WSGISTACK_")) or name in (
                "WEB_CONCURRENCY",
                "APP_MODULE",
            ):
                if not env or name not in env:
                    del full_env[name]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wsgistack", app, *self.args],
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, workers: int = 1) -> None:
        """Until ``workers`` workers logged "serving" and the port answers."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            if self.log().count(" serving ") >= workers:
                try:
                    self.connect().close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {BOOT_TIMEOUT} s:\n{self.log()}")

    def connect(self, source: str | None = None) -> socket.socket:
        if self.unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(IO_TIMEOUT)
            sock.connect(self.unix)
            return sock
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(IO_TIMEOUT)
        if source:
            sock.bind((source, 0))
        sock.connect((self.host, self.port))
        return sock

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:  # --error-logfile not yet created
            return ""

    def expect_log(self, text: str) -> None:
        """A test that provokes a traceback declares it, so the final check allows it."""
        self.expected.append(text)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"server did not stop in {timeout} s:\n{self.log()}") from None

    def check_log(self) -> None:
        """No validator complaint and no unexpected traceback in the error log."""
        text = self.log()
        assert "AssertionError" not in text, text
        assert "WSGIWarning" not in text, text
        tracebacks = text.count("Traceback (most recent call last)")
        allowed = sum(text.count(marker) for marker in set(self.expected))
        assert tracebacks <= allowed, text


# -- the client --------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int]
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> dict:
        return json.loads(self.body)


class Client:
    """Raw bytes out, h11-parsed responses in, over one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET") -> Response:
        """Read exactly one response (plus any 1xx before it) to a ``method`` request."""
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        if self.buffer:
            conn.receive_data(self.buffer)  # b"" would mean end of stream to h11
        raw = self.buffer
        self.buffer = b""
        status, headers, body, interim = 0, [], bytearray(), []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(65536)
                raw += data
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                interim.append(event.status_code)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = [(k.decode(), v.decode("latin-1")) for k, v in event.headers.raw_items()]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        self.buffer, _closed = conn.trailing_data
        used = len(raw) - len(self.buffer)
        return Response(status, headers, bytes(body), interim, raw[:used])

    def closed(self) -> bool:
        """True if the server closed the connection (EOF or reset) with nothing more sent."""
        if self.buffer:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def request(
    method: str = "GET",
    target: str = "/echo",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """A request's bytes; Host and Content-Length are added unless given."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names and version == "HTTP/1.1":
        headers.insert(0, ("Host", "example.test"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` every 20 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()

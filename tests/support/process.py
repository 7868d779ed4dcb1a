"""Real ``python -m wsgistack`` processes on free loopback ports, for the
conformance and framework tests (tests/server): ``Server`` starts one (master
and workers) with a clean environment, waits until it serves, stops it, and
checks its error log. Talk to it with ``tests.support.rawhttp.Client``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT

IO_TIMEOUT = 10.0  # seconds any single socket operation of a test may wait
BOOT_TIMEOUT = 20.0  # seconds for a server to accept connections
# The server's own settings in the environment: a test sets the ones it means.
SETTING_PREFIXES = ("SERVER_", "WSGISTACK_")
SETTINGS = ("WEB_CONCURRENCY", "APP_MODULE")
# Not a setting: the hot path's mode, the test lane's (make test runs the server
# tests compiled, then the conformance and PEP 3333 ones with it set to 1).
PASSED_THROUGH = ("WSGISTACK_NO_EXTENSIONS",)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_environ(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the server's settings (SETTINGS,
    SETTING_PREFIXES; PASSED_THROUGH kept), with PYTHONPATH=ROOT (the test apps import as
    ``tests.server....`` from there) and unbuffered output; ``env`` on top."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name in PASSED_THROUGH
        or (not name.startswith(SETTING_PREFIXES) and name not in SETTINGS)
    }
    clean["PYTHONPATH"] = str(ROOT)
    clean["PYTHONUNBUFFERED"] = "1"
    return {**clean, **(env or {})}


@dataclass
class Server:
    """One server process (master and workers) serving ``app`` ("module:callable",
    importable from ROOT) with the flags ``args``; its output goes to ``log_path``."""

    app: str
    args: list[str]
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    unix: str | None = None
    proc: subprocess.Popen | None = None
    expected: list[str] = field(default_factory=list)
    cwd: Path = ROOT  # the server's current directory (--reload watches it)

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start it, in ``server_environ(env)``: the environment ``env`` completes."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wsgistack", self.app, *self.args],
                cwd=self.cwd,
                env=server_environ(env),
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

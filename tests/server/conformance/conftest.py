"""Fixtures of the conformance suite (the harness: tests/support/process.py
and rawhttp.py).

Every server runs the ``recorder`` app under ``wsgiref.validate``; when a
server stops, its error log must hold no validator error and no traceback
other than the ones a test expected (``Server.expect_log``).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.server.conformance import RECORDER
from tests.support import ROOT
from tests.support.process import Server, free_port
from tests.support.rawhttp import Client


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory) -> Iterator:
    """``start(*flags, workers=N)`` → a ready Server; all are stopped and checked at the end."""
    started: list[Server] = []

    def start(*flags: str, workers: int = 1, host: str = "127.0.0.1", env=None) -> Server:
        folder = tmp_path_factory.mktemp("server")
        flags_list = list(flags)
        server = Server(RECORDER, flags_list, folder / "server.log", host=host)
        if "-b" in flags_list:  # the first address is the one the client uses
            address = flags_list[flags_list.index("-b") + 1]
            if address.startswith("unix:"):
                server.unix = address[len("unix:") :]
            else:
                bound_host, _, port = address.rpartition(":")
                server.host, server.port = bound_host.strip("[]"), int(port)
        else:
            server.port = free_port(host)
            address = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"
            flags_list += ["-b", address]
        flags_list += ["-w", str(workers)]
        server.args = flags_list
        server.start(env)
        started.append(server)
        server.wait_ready(workers)
        return server

    yield start
    failures = []
    for server in started:
        if server.proc and server.proc.poll() is None:
            server.stop()
        try:
            server.check_log()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


@pytest.fixture(scope="session")
def server(server_factory) -> Server:
    """The suite's main server: 2 workers × 4 threads, small limits and timeouts."""
    return server_factory(
        "--threads",
        "4",
        "--keep-alive",
        "2",
        "--client-header-timeout",
        "2",
        "--limit-request-line",
        "1024",
        "--limit-request-fields",
        "20",
        "--limit-request-field_size",
        "512",
        "--limit-request-body",
        "65536",
        workers=2,
    )


@pytest.fixture
def connect(server) -> Iterator:
    """``connect()`` → a Client on the main server; closed after the test."""
    clients: list[Client] = []

    def make(target: Server | None = None, source: str | None = None) -> Client:
        client = Client((target or server).connect(source))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def spawn(tmp_path):
    """``spawn(*flags, app=..., env=..., cwd=...)`` → a started Server (not yet ready)."""
    servers: list[Server] = []

    def start(*flags: str, app=RECORDER, env=None, bind=True, cwd=ROOT) -> Server:
        server = Server(app, list(flags), tmp_path / f"server{len(servers)}.log", cwd=cwd)
        if bind:
            server.port = free_port()
            server.args += ["-b", f"127.0.0.1:{server.port}"]
        server.start(env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.stop(signal.SIGQUIT)
    for server in servers:
        server.check_log()  # no wsgiref.validate complaint, no undeclared traceback

"""The app container's own files, run on the host: entrypoint.sh's PRESTART (once, before
the server, failing the container with its output) and gunicorn.conf.py serving an app
factory (APP_MODULE='module:factory(args)') under WSGI_SERVER=gunicorn, with the server's
health path answered before the app. tests/stack/integration/test_lifecycle.py runs them
in the image."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support import ROOT, wait_until
from tests.support.process import server_environ

CONTAINER = ROOT / "app" / "container"


@pytest.fixture
def fake_supervisord(tmp_path) -> dict[str, str]:
    """An environment whose `supervisord` only says it started (the container's command)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "supervisord"
    fake.write_text('#!/bin/sh\necho "supervisord started $*"\n')
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(CONTAINER / "entrypoint.sh"), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_prestart_runs_once_before_the_server(fake_supervisord, tmp_path):
    marker = tmp_path / "prestart-ran"
    env = {**fake_supervisord, "PRESTART": f"echo checked >> {marker}"}
    result = entrypoint(env, "supervisord", "-n")
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "checked\n"
    assert result.stdout == "supervisord started -n\n"
    assert f"entrypoint: PRESTART: echo checked >> {marker}" in result.stderr


def test_a_failing_prestart_ends_the_container_with_its_status_and_output(fake_supervisord):
    env = {**fake_supervisord, "PRESTART": "echo 'database unreachable' >&2; exit 3"}
    result = entrypoint(env, "supervisord")
    assert result.returncode == 3
    assert "database unreachable" in result.stderr
    assert "PRESTART failed with status 3; not starting the server" in result.stderr
    assert "supervisord started" not in result.stdout


def test_other_commands_run_as_they_are_without_prestart(fake_supervisord, tmp_path):
    marker = tmp_path / "prestart-ran"
    env = {**fake_supervisord, "PRESTART": f"touch {marker}"}
    result = entrypoint(env, "echo", "flask", "db", "upgrade")  # make run CMD=...
    assert (result.returncode, result.stdout) == (0, "flask db upgrade\n")
    assert not marker.exists()


def test_without_prestart_the_server_just_starts(fake_supervisord):
    env = {k: v for k, v in fake_supervisord.items() if k != "PRESTART"}
    result = entrypoint(env, "supervisord")
    assert (result.returncode, result.stdout, result.stderr) == (0, "supervisord started \n", "")


FACTORY_APP = """
def create_app(greeting, punctuation="!"):
    body = (greeting + punctuation).encode()

    def application(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return application
"""


def _get(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: t\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_gunicorn_serves_an_app_factory_with_literal_arguments(tmp_path):
    (tmp_path / "factoryapp.py").write_text(FACTORY_APP)
    (tmp_path / "metrics").mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = server_environ(
        {
            "PYTHONPATH": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "WEB_CONCURRENCY": "1",
            "WSGISTACK_HEALTH_PATH": "/-/ready",
        }
    )
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(CONTAINER / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "factoryapp:create_app('Hello', punctuation='?')"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_until(lambda: "Booting worker" in log.read_text(), 30), log.read_text()

        def answers() -> bool:
            try:
                return _get(port, "/") == (200, b"Hello?")
            except OSError:
                return False

        assert wait_until(answers, 15), log.read_text()
        assert _get(port, "/-/ready") == (200, b"ok\n")  # answered before the app
    finally:
        process.terminate()
        process.wait(30)

"""The server as users install it: ``python -m pip install ./server`` into a
fresh virtual environment gives the ``wsgistack`` and ``wsgistack-exporter``
commands and ``python -m wsgistack``, with one version, and serves a user's
module from a directory that also holds a ``server.py`` and an ``app/`` of
the user's own (the names the server's package had before it was wsgistack)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest
import wsgistack

from tests.support import ROOT

pytestmark = pytest.mark.slow

# The user's module imports the user's own `server` and `app` (by name, so that
# a search for our old imports finds none in this file).
USER_APP = """
import importlib

server, app = importlib.import_module("server"), importlib.import_module("app")


def application(environ, start_response):
    body = f"{server.NAME} {app.NAME}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with ./server installed (not editable); returns its bin/."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    wheels = ROOT / "requirements" / "wheels"  # the offline wheelhouse, when filled
    links = ["--find-links", str(wheels)] if any(wheels.glob("*.whl")) else []
    subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "--quiet", *links, str(ROOT / "server")],
        check=True,
        timeout=300,
    )
    return home / "bin"


def test_version_is_the_packages_one_everywhere(installed):
    expected = f"wsgistack {wsgistack.__version__}"
    for command in ([installed / "wsgistack"], [installed / "python", "-m", "wsgistack"]):
        result = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=60, check=True
        )
        assert result.stdout.strip() == expected
    metadata = subprocess.run(
        [
            installed / "python",
            "-c",
            "import importlib.metadata as m; print(m.version('wsgistack'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert metadata.stdout.strip() == wsgistack.__version__


def test_the_installed_wheel_runs_its_hot_path_compiled(installed):
    """pip built a platform wheel with the Cython extensions (a C compiler is a test
    host package) and the installed server imports them."""
    env = {k: v for k, v in os.environ.items() if k != "WSGISTACK_NO_EXTENSIONS"}
    probe = (
        "import wsgistack._hotpath as h, wsgistack.http.parser as p; "
        "print(h.mode(), p.__file__.rsplit('.', 1)[1])"
    )
    result = subprocess.run(
        [installed / "python", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
        cwd=installed,  # not the checkout: the installed package, not server/src
    )
    assert result.stdout.split() == ["compiled", "so"]


def test_exporter_command_is_installed(installed):
    result = subprocess.run(
        [installed / "wsgistack-exporter", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: wsgistack-exporter")


def test_serves_a_user_module_beside_its_own_server_py_and_app(installed, tmp_path):
    (tmp_path / "myapp.py").write_text(USER_APP)
    (tmp_path / "server.py").write_text('NAME = "users-server"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text('NAME = "users-app"\n')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [installed / "wsgistack", "-b", f"127.0.0.1:{port}", "-w", "1", "myapp:application"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 30, None
        while body is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.2)
        assert body == "users-server users-app"
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
    assert "Traceback" not in errors
    assert process.returncode == 0


def test_the_package_is_not_importable_as_server():
    """The import name is wsgistack; nothing of ours answers to `server`."""
    result = subprocess.run(
        [sys.executable, "-c", "import server"], cwd="/", capture_output=True, timeout=60
    )
    assert result.returncode != 0

"""Fixtures of the framework compatibility tests: each app served end-to-end
by a real ``python -m wsgistack`` (tests.support.process.Server), inside
``wsgiref.validate.validator`` (``apps/validated.py``). When the server stops,
its log must hold no validator complaint and no traceback but the views' own
deliberate errors (``Server.check_log``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.process import Server, free_port

APPS = {  # imported by the server from the repository root
    "flask": "tests.server.frameworks.apps.flask_app:application",
    "django": "tests.server.frameworks.apps.django_app:application",
    "falcon": "tests.server.frameworks.apps.falcon_app:application",
}
DELIBERATE_ERROR = "view fails on purpose"  # what the apps' /error views raise
FILE_SIZE = 300_000  # bytes of the file the apps send with wsgi.file_wrapper


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.bin"
    path.write_bytes(bytes(range(256)) * (FILE_SIZE // 256) + b"end")
    return path


@pytest.fixture(scope="module", params=list(APPS))
def framework(request, data_file, tmp_path_factory) -> Iterator[tuple[str, httpx.Client]]:
    """(name, client) for each framework's app behind the server, mounted at /prefix."""
    name = request.param
    server = Server(
        APPS[name],
        ["-w", "2", "--threads", "2", "--script-name", "/prefix"],
        tmp_path_factory.mktemp(name) / "server.log",
    )
    server.port = free_port()
    server.args += ["-b", f"127.0.0.1:{server.port}"]
    server.start({"COMPAT_DATA": str(data_file)})
    try:
        server.wait_ready(2)
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}/prefix", timeout=10) as client:
            yield name, client
    finally:
        assert server.stop() == 0
        server.expect_log(DELIBERATE_ERROR)
        server.check_log()

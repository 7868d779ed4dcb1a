"""Fixtures of the framework compatibility tests: each app served end-to-end
by a real ``python -m wsgistack`` (the conformance suite's Server harness), inside
``wsgiref.validate.validator`` (``apps/validated.py``). When the server stops,
its log must hold no validator complaint and no traceback but the views' own
deliberate errors (the harness's ``check_log``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "conformance"))
import harness  # noqa: E402  (the conformance suite's Server, by path: no package)

APPS = {
    "flask": "flask_app:application",
    "django": "django_app:application",
    "falcon": "falcon_app:application",
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
    server = harness.Server(
        ["-w", "2", "--threads", "2", "--script-name", "/prefix"],
        tmp_path_factory.mktemp(name) / "server.log",
    )
    server.port = harness.free_port()
    server.args += ["-b", f"127.0.0.1:{server.port}"]
    env = {
        "PYTHONPATH": f"{HERE / 'apps'}{os.pathsep}{harness.ROOT}",
        "COMPAT_DATA": str(data_file),
    }
    server.start(env, app=APPS[name])
    try:
        server.wait_ready(2)
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}/prefix", timeout=10) as client:
            yield name, client
    finally:
        assert server.stop() == 0
        server.expect_log(DELIBERATE_ERROR)
        server.check_log()

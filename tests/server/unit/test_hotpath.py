"""The compiled hot path (server/setup.py, wsgistack._hotpath): the per-request
modules run as Cython extension modules built from their own .py source, or as
that source with WSGISTACK_NO_EXTENSIONS=1, or when the build had no compiler.

`make test` runs the server tests with the hot path compiled (the venv builds
it), then the conformance and PEP 3333 tests with WSGISTACK_NO_EXTENSIONS=1:
this module runs in both lanes and checks the mode each one claims.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wsgistack import _hotpath

from tests.server.conformance import RECORDER
from tests.support import ROOT
from tests.support.process import Server, free_port

BUILD_HINT = (
    "the hot path is not compiled: install build-essential and python3-dev "
    "(make host-packages), then `touch server/setup.py && make venv`"
)
MODE_OF_A_FRESH_INTERPRETER = (
    "import wsgistack._hotpath as h, wsgistack.wsgi as w; print(h.mode(), w.__file__)"
)


def fresh_interpreter(env: dict[str, str], cwd: Path = ROOT) -> list[str]:
    """``mode()`` and wsgistack.wsgi's file, as a new interpreter in ``env`` sees them."""
    result = subprocess.run(
        [sys.executable, "-c", MODE_OF_A_FRESH_INTERPRETER],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


def test_this_lane_runs_the_mode_it_claims():
    modules = [importlib.import_module(name) for name in _hotpath.HOT_MODULES]
    if _hotpath.forced_off():  # the Python lane
        assert _hotpath.mode() == "python"
        assert all(Path(m.__file__).suffix == ".py" for m in modules)
        return
    assert _hotpath.mode() == "compiled", BUILD_HINT
    for module in modules:
        assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
        source = Path(module.__file__).parent / (module.__name__.rsplit(".", 1)[1] + ".py")
        if source.is_relative_to(ROOT):  # built in place (make venv): not older than its source
            assert module.__file__ and os.path.getmtime(module.__file__) >= os.path.getmtime(
                source
            ), f"{module.__file__} is older than {source.name}: `make venv` rebuilds it"


def test_the_switch_forces_the_python_source():
    mode, wsgi_file = fresh_interpreter({"WSGISTACK_NO_EXTENSIONS": "1"})
    assert (mode, Path(wsgi_file).name) == ("python", "wsgi.py")


@pytest.mark.parametrize("value", ["", "0"])
def test_unset_or_0_is_the_compiled_path(value):
    mode, wsgi_file = fresh_interpreter({"WSGISTACK_NO_EXTENSIONS": value})
    assert mode == "compiled", BUILD_HINT
    assert wsgi_file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@pytest.mark.parametrize(("value", "mode"), [("1", "python"), ("", "compiled")])
def test_the_startup_line_says_the_mode(tmp_path, value, mode):
    server = Server(RECORDER, [], tmp_path / "server.log")
    server.port = free_port()
    server.args = ["-b", f"127.0.0.1:{server.port}", "-w", "1"]
    server.start({"WSGISTACK_NO_EXTENSIONS": value})
    try:
        server.wait_ready()
    finally:
        server.stop()
    listening = [line for line in server.log().splitlines() if " listening on " in line]
    assert len(listening) == 1 and listening[0].endswith(f", hot path: {mode}"), server.log()


@pytest.mark.slow
def test_a_build_whose_compiler_fails_installs_the_python_source(tmp_path):
    """An sdist or source install on a host without a working C compiler: the
    build succeeds without the extensions and the server runs as Python."""
    pytest.importorskip("Cython", reason="Cython is the venv's (requirements/build.txt)")
    server = tmp_path / "server"
    shutil.copytree(
        ROOT / "server",
        server,
        ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "build", "*.egg-info"),
    )
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=server,
        # every compile fails; the build-time switch (setup.py) left unset
        env={**os.environ, "CC": "false", "LDSHARED": "false", "WSGISTACK_NO_EXTENSIONS": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "building the compiled hot path failed" in result.stderr
    assert not list((server / "src").rglob("*.so"))
    mode, wsgi_file = fresh_interpreter(
        {"PYTHONPATH": str(server / "src"), "WSGISTACK_NO_EXTENSIONS": ""}, cwd=tmp_path
    )
    assert (mode, Path(wsgi_file)) == ("python", server / "src" / "wsgistack" / "wsgi.py")


def test_setup_compiles_exactly_the_hot_modules():
    tree = ast.parse((ROOT / "server" / "setup.py").read_text())
    [sources] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOT_SOURCES"
    ]
    modules = [
        source.removeprefix("src/").removesuffix(".py").replace("/", ".")
        for source in ast.literal_eval(sources)
    ]
    assert modules == list(_hotpath.HOT_MODULES)


def test_the_pxd_files_declare_every_attribute():
    """An attribute the .py sets that its .pxd does not declare lands in the compiled
    object's __dict__: it works, at a Python attribute's speed. Declare it."""
    if _hotpath.forced_off():
        pytest.skip("the .pxd files type the compiled classes only")
    from wsgistack.http.parser import Limits, RequestParser
    from wsgistack.http.response import Response

    parser = RequestParser(Limits(4094, 100, 8190, 0))
    parser.feed(b"POST /a?b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n")
    parser.feed(b"0\r\n\r\nGET / HTTP/1.1\r\nHo")
    request = parser.requests[0]
    response = Response(object(), request, True)  # no send: a connection is not needed
    response.start_response("200 OK", [("Content-Length", "1")])
    assert (vars(parser), vars(response)) == ({}, {})

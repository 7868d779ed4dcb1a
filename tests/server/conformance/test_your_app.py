"""What a user's project needs of the server, against real processes: an
application factory as APP_MODULE, --health-path answered before the app,
gunicorn's hooks from a -c file (one that raises is reported by name), and
--reload showing an edit without a restart of the master."""

from __future__ import annotations

import os
import time

from tests.support import ROOT, wait_until
from tests.support.process import Server
from tests.support.rawhttp import Client, request

FACTORY_APP = """
CALLS = []


def create_app(greeting="hello"):
    def application(environ, start_response):
        body = f"{greeting} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return application
"""

HOOKS = """
import os

MARKS = os.environ["HOOK_MARKS"]


def mark(text):
    with open(MARKS, "a") as out:
        out.write(text + "\\n")


def on_starting(server):
    mark("on_starting")


def when_ready(server):
    mark("when_ready")
    raise RuntimeError("the DSN is missing")  # reported, the server goes on


def post_fork(server, worker):
    mark("post_fork")


def post_worker_init(worker):
    mark("post_worker_init")


def pre_request(worker, req):
    mark("pre_request " + req.method)


def post_request(worker, req, environ, resp):
    mark(f"post_request {environ['PATH_INFO']} {resp.status_code}")


def worker_exit(server, worker):
    mark("worker_exit")


def on_exit(server):
    mark("on_exit")
"""


def _get(server: Server, target: str) -> tuple[int, bytes]:
    client = Client(server.connect())
    try:
        client.send(request(target=target))
        response = client.response()
        return response.status, response.body
    finally:
        client.close()


def _module_env(folder) -> dict[str, str]:
    return {"PYTHONPATH": f"{folder}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}


def test_an_app_factory_with_literal_arguments_is_served(spawn, tmp_path):
    (tmp_path / "factoryapp.py").write_text(FACTORY_APP)
    server = spawn(app="factoryapp:create_app('bonjour')", env=_module_env(tmp_path))
    server.wait_ready()
    assert _get(server, "/x") == (200, b"bonjour /x")


def test_the_health_path_is_answered_before_the_app(spawn):
    server = spawn("--health-path", "/-/ready", "--access-logfile", "-")
    server.wait_ready()
    status, body = _get(server, "/-/ready")
    assert (status, body) == (200, b"ok\n")
    # the recorder app answers everything else with the environ it saw
    assert _get(server, "/-/ready/x")[0] == 200
    assert b'"PATH_INFO": "/-/ready/x"' in _get(server, "/-/ready/x")[1]
    assert '"uri":"/-/ready"' in server.log().replace(" ", "")


def test_hooks_run_at_gunicorns_points_and_a_raising_one_is_named(spawn, tmp_path):
    marks = tmp_path / "marks.txt"
    (tmp_path / "hooks.py").write_text(HOOKS)
    server = spawn("-c", str(tmp_path / "hooks.py"), env={"HOOK_MARKS": str(marks)})
    server.expect_log("hook when_ready raised")
    server.wait_ready()
    assert _get(server, "/echo")[0] == 200
    assert server.stop() == 0
    lines = marks.read_text().splitlines()
    assert lines[:2] == ["on_starting", "when_ready"]
    for expected in ("post_fork", "post_worker_init", "pre_request GET", "post_request /echo 200"):
        assert expected in lines
    assert lines[-2:] == ["worker_exit", "on_exit"]
    log = server.log()
    assert "hook when_ready raised" in log and "RuntimeError: the DSN is missing" in log


def test_reload_shows_an_edit_without_restarting_the_master(spawn, tmp_path):
    module = tmp_path / "editable.py"
    module.write_text(FACTORY_APP)
    # As a user runs it: from the project's folder, which --reload watches.
    server = spawn(
        "--reload", "-w", "1", app="editable:create_app()", cwd=tmp_path, env=_module_env(tmp_path)
    )
    server.wait_ready()
    assert wait_until(lambda: "reload: watching" in server.log(), 10)
    master = server.proc.pid
    assert _get(server, "/")[1] == b"hello /"
    module.write_text(FACTORY_APP.replace('greeting="hello"', 'greeting="edited"'))
    started = time.monotonic()
    assert wait_until(lambda: _get(server, "/")[1] == b"edited /", 10, interval=0.1), server.log()
    print(f"\n  --reload: the edit answered after {time.monotonic() - started:.2f} s")
    assert server.proc.pid == master and server.proc.poll() is None
    assert "reload: editable.py changed, restarting the workers" in server.log()

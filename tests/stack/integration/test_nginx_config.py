"""nginx's configuration as it runs (rendered from .env): `nginx -t`, gixy, and
the settings the upstream keep-alive and the request limits depend on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gixy.parser.nginx_parser import NginxParser

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _nginx_dump(stack) -> str:
    result = stack.container("proxy").exec_run(["nginx", "-T", "-e", "stderr"], demux=True)
    stdout, stderr = result.output
    assert result.exit_code == 0, (stderr or b"").decode()
    return stdout.decode()


def _directives(stack, name: str) -> list:
    root = NginxParser().parse_string(_nginx_dump(stack))
    return list(root.find_recursive(name))


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * units[unit]
    return float(value)


def _server_config(stack) -> dict:
    """The WSGI server's effective configuration in the running app container."""
    code = (
        "import dataclasses, json; from wsgistack import config; "
        "print(json.dumps(dataclasses.asdict(config.load([])[0])))"
    )
    return json.loads(stack.app_exec("python", "-c", code))


def test_nginx_t_accepts_the_configuration(stack):
    result = stack.container("proxy").exec_run(["nginx", "-t", "-e", "stderr"], demux=True)
    _, stderr = result.output
    assert result.exit_code == 0
    assert b"test is successful" in stderr


def test_gixy_finds_nothing(stack):
    # The default checks; no --nginx-version, whose CVE check goes by version
    # number alone and would flag what Debian's 1.22.1-9+debXuY has patched.
    result = subprocess.run(
        [BIN / "gixy", "-"],
        input=_nginx_dump(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert "No issues found." in result.stdout


def test_gixy_would_report_a_spoofable_host_header(stack):
    """gixy really reads the dump: the Host header we avoid is reported."""
    dump = _nginx_dump(stack).replace(
        "proxy_set_header Host $host:", "proxy_set_header Host $http_host; #"
    )
    result = subprocess.run(
        [BIN / "gixy", "-"], input=dump, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "host_spoofing" in result.stdout


def test_upstream_keepalive_is_explicit(stack):
    (upstream,) = [u for u in _directives(stack, "upstream") if u.args == ["app"]]
    settings = {child.name: child.args for child in upstream.children}
    assert int(settings["keepalive"][0]) > 0
    assert "keepalive_timeout" in settings
    (location,) = [
        loc
        for loc in _directives(stack, "location")
        if loc.args == ["/"]
        and loc.parent.name == "server"
        and any(d.name == "proxy_pass" for d in loc.children)
    ]
    children = {(d.name, tuple(d.args)) for d in location.children}
    assert ("proxy_pass", ("http://app",)) in children
    assert ("proxy_http_version", ("1.1",)) in children
    assert ("proxy_set_header", ("Connection", "")) in children


def test_server_keep_alive_outlasts_nginx_upstream_keepalive_timeout(stack):
    (upstream,) = [u for u in _directives(stack, "upstream") if u.args == ["app"]]
    (timeout,) = [d for d in upstream.children if d.name == "keepalive_timeout"]
    nginx_idle = _seconds(timeout.args[0])
    server_idle = _server_config(stack)["keep_alive"]
    assert server_idle > nginx_idle, (server_idle, nginx_idle)


def test_server_tokens_off(stack):
    assert [d.args for d in _directives(stack, "server_tokens")] == [["off"]]


def test_request_limits_come_from_one_env_value(stack):
    """nginx's and the server's size limits are the .env values (see test_limits.py)."""
    env = stack.env
    server = _server_config(stack)
    assert server["limit_request_line"] == int(env["LIMIT_REQUEST_LINE"])
    assert server["limit_request_field_size"] == int(env["LIMIT_REQUEST_FIELD_SIZE"])
    assert server["limit_request_fields"] == int(env["LIMIT_REQUEST_FIELDS"])
    assert server["limit_request_body"] == int(env["LIMIT_REQUEST_BODY"])
    assert [d.args for d in _directives(stack, "client_max_body_size")] == [
        [env["LIMIT_REQUEST_BODY"]]
    ]
    (buffers,) = [d.args for d in _directives(stack, "large_client_header_buffers")]
    assert int(buffers[1]) == int(env["LIMIT_REQUEST_FIELD_SIZE"]) + len(": \r\n")

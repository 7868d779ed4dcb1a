"""The PEP 3333 and RFC 9112 edges of a server exposed directly: what an
application may not send is refused before anything goes out (500, logged),
logging never raises nor writes a raw control character, and request fields
are read as RFC 9110 and 9112 say (combined list fields, the absolute-form
target's authority, a valid Host, empty list elements)."""

from __future__ import annotations

import json

import pytest

from tests.support import wait_until
from tests.support.rawhttp import Client, request

BAD_APP = """
RESPONSES = {
    "/euro-header": ("200 OK", [("X-Test", "\\u20ac")]),
    "/control-header": ("200 OK", [("X-Test", "a\\x01b")]),
    "/del-header": ("200 OK", [("X-Test", "a\\x7fb")]),
    "/nul-reason": ("200 O\\x00K", []),
    "/euro-reason": ("200 \\u20ac", []),
    "/early-hints": ("103 Early Hints", []),
}


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path in RESPONSES:
        status, headers = RESPONSES[path]
        start_response(status, headers)
        return [b"never sent"]
    if path == "/own-date":  # fields the server sets or sends once
        start_response("200 OK", [("Date", "yesterday"), ("Server", "mine"),
                                  ("Content-Length", "2"), ("Content-Length", "3")])
        return [b"ok"]
    if path == "/non-str-environ":  # an app that rewrites its environ
        environ["HTTP_USER_AGENT"] = 123
        environ["HTTP_REFERER"] = b"bytes"
        environ["RAW_URI"] = None
    if path.startswith("/fail"):
        raise RuntimeError("the app failed")
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


@pytest.fixture
def bad_app(spawn, tmp_path):
    """``start(*flags)``: a ready server of BAD_APP (run from its folder)."""
    (tmp_path / "badapp.py").write_text(BAD_APP)

    def start(*flags: str):
        server = spawn("-w", "1", *flags, app="badapp:application", cwd=tmp_path)
        server.wait_ready()
        return server

    return start


def _exchange(server, raw: bytes, method: str = "GET", closes: bool = False):
    """(response, whether the server then closed the connection: asked only with
    ``closes``, as a kept-alive connection would make the question wait)."""
    client = Client(server.connect())
    try:
        client.send(raw)
        response = client.response(method)
        return response, client.closed() if closes else None
    finally:
        client.close()


@pytest.mark.parametrize(
    "path",
    ["/euro-header", "/control-header", "/del-header", "/nul-reason", "/euro-reason",
     "/early-hints"],
)  # fmt: skip
def test_what_the_app_may_not_send_is_a_500_before_anything_goes_out(bad_app, path):
    server = bad_app()
    server.expect_log("error handling GET " + path)
    response, closed = _exchange(server, request(target=path), closes=True)
    assert response.status == 500 and b"never sent" not in response.body
    assert closed  # nothing of a half-sent response can follow
    assert "error handling GET " + path in server.log()
    assert _exchange(server, request(target="/ok"))[0].status == 200  # the worker serves on


@pytest.mark.parametrize("style", ["json", "combined"])
def test_an_environ_the_app_rewrote_never_breaks_the_access_log(bad_app, style):
    server = bad_app("--access-logfile", "-", "--access-log-style", style)
    for _ in range(2):
        assert _exchange(server, request(target="/non-str-environ"))[0].status == 200
    assert "crashed" not in server.log() and "Traceback" not in server.log()
    # both lines written, with the rewritten User-Agent (the log is written after the response)
    lines = ('"user_agent":123', '"123"')  # json keeps the int, combined writes text
    assert wait_until(lambda: sum(server.log().count(line) for line in lines) >= 2, 5)
    assert "crashed" not in server.log() and "Traceback" not in server.log()


def test_control_characters_never_reach_a_log_line(bad_app):
    server = bad_app("--access-logfile", "-", "--access-log-style", "combined")
    server.expect_log("error handling GET /fail")
    raw = request(target="/fail%0Aforged%1b[31m", headers=[("User-Agent", "a\x85b\x9bc")])
    assert _exchange(server, raw)[0].status == 500
    assert _exchange(server, request(headers=[("User-Agent", "a\x85b\x9bc")], target="/ok"))
    log = server.log()
    assert "error handling GET /fail%0Aforged%1b[31m" in log  # the raw target, as gunicorn
    assert "\x85" not in log and "\x9b" not in log and "\x1b" not in log
    assert '"a\\x85b\\x9Bc"' in log


def _echo(server, raw: bytes) -> dict:
    response, _ = _exchange(server, raw)
    assert response.status == 200, response
    return json.loads(response.body)["environ"]


def test_connection_field_lines_combine_and_close_wins(server):
    raw = b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    response, closed = _exchange(server, raw, closes=True)
    assert response.header("Connection") == "close" and closed


def test_an_absolute_form_targets_authority_wins_over_host(server):
    raw = b"GET http://other.example:81/echo HTTP/1.1\r\nHost: a:99\r\n\r\n"
    environ = _echo(server, raw)
    assert environ["HTTP_HOST"] == "other.example:81" and environ["PATH_INFO"] == "/echo"


@pytest.mark.parametrize("host", ["a b", "u@a", "a/b", "[::1"])
def test_a_host_that_is_no_uri_host_is_a_400(server, host):
    raw = b"GET /echo HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    response, closed = _exchange(server, raw, closes=True)
    assert response.status == 400 and closed


def test_empty_list_elements_are_ignored(server):
    environ = _echo(server, request(headers=[("X-Forwarded-For", "1.1.1.1,")]))
    assert environ["REMOTE_ADDR"] == "1.1.1.1"  # the conformance server trusts 127.0.0.1
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    response, _ = _exchange(server, raw, "POST")
    assert response.status == 200 and json.loads(response.body)["body"] == "abc"


def test_the_last_response_of_a_recycled_worker_ends_with_a_fin_not_a_reset(spawn):
    """--max-requests 2 and a third request pipelined behind: two responses, the
    second with Connection: close, then the connection ends cleanly (RFC 9112 §9.6
    staged close) instead of a reset that can destroy the responses in flight."""
    server = spawn("-w", "1", "--max-requests", "2")
    server.wait_ready()
    client = Client(server.connect())
    try:
        client.send(request(target="/pid") * 2)
        assert client.response().status == 200
        client.send(request(target="/pid"))  # pipelined behind the worker's last one
        last = client.response()
        assert last.status == 200 and last.header("Connection") == "close"
        client.sock.settimeout(5)
        assert client.parser.unread == b""  # the third is not answered here
        assert client.sock.recv(65536) == b""  # a FIN: ConnectionResetError on a reset
    finally:
        client.close()


def test_the_apps_own_date_server_and_second_content_length_are_logged(bad_app):
    server = bad_app()
    for _ in range(2):
        response, _ = _exchange(server, request(target="/own-date"))
        assert response.status == 200 and response.body == b"ok"
        assert response.header("Server") == "wsgistack" and response.header("Date") != "yesterday"
    log = server.log()
    for name in ("Date", "Server", "Content-Length"):
        assert log.count(f"the application's {name} header is not sent") == 1, log  # once


def test_a_close_delimited_response_cut_short_ends_with_a_reset(server):
    """HTTP/1.0, no Content-Length: the body ends with the connection. An app that
    fails mid-body must not end it like a complete one (a FIN): a reset."""
    server.expect_log("the recorder fails on purpose, mid-body")
    client = Client(server.connect())
    try:
        client.send(b"GET /error-late HTTP/1.0\r\nHost: h\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):
            while chunk := client.sock.recv(65536):
                received += chunk
        assert received.endswith(b"first\n")
    finally:
        client.close()


def test_an_upgrade_request_with_a_body_gets_its_body_to_the_app(server):
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    response, closed = _exchange(server, raw, "POST", closes=True)
    assert response.status == 200 and json.loads(response.body)["body"] == "hello"
    assert closed  # not upgraded: the connection ends with the request

"""Valid requests, each checked field by field against the environ the app saw (PEP 3333)."""

from __future__ import annotations

import pytest

from tests.support.rawhttp import request


def echo(connect, raw: bytes, **target) -> dict:
    client = connect(**target)
    client.send(raw)
    response = client.response()
    assert response.status == 200, response
    return response.json()


def test_request_line_and_server_fields(connect, server):
    seen = echo(connect, request("GET", "/echo/a%20b?x=1&y=%41", [("Host", "example.test:8080")]))
    env = seen["environ"]
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/echo/a b"  # percent-decoded (PEP 3333, CGI)
    assert env["QUERY_STRING"] == "x=1&y=%41"  # never decoded
    assert env["RAW_URI"] == "/echo/a%20b?x=1&y=%41"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["HTTP_HOST"] == "example.test:8080"
    assert "CONTENT_TYPE" not in env and "CONTENT_LENGTH" not in env
    assert seen["body"] == ""


def test_wsgi_keys(connect):
    facts = echo(connect, request())["wsgi"]
    assert facts["wsgi.version"] == [1, 0]
    assert facts["wsgi.url_scheme"] == "http"
    assert facts["wsgi.multithread"] is True  # the main server runs 4 threads
    assert facts["wsgi.multiprocess"] is True
    assert facts["wsgi.run_once"] is False
    assert facts["wsgi.input_terminated"] is True
    assert facts["wsgi.file_wrapper"] is True
    assert facts["types"] == ["str"]  # every CGI key is a native string


def test_content_type_and_length_without_http_prefix(connect):
    body = b"a=1&b=2"
    seen = echo(
        connect,
        request("POST", "/echo", [("Content-Type", "application/x-www-form-urlencoded")], body),
    )
    env = seen["environ"]
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert seen["body"] == "a=1&b=2"
    assert seen["after"] == ""


def test_repeated_headers_are_combined_in_order(connect):
    env = echo(
        connect,
        request(
            headers=[("Accept", "text/html"), ("X-Multi", "one"), ("Accept", "text/plain")]
            + [("x-multi", "two")]
        ),
    )["environ"]
    assert env["HTTP_ACCEPT"] == "text/html,text/plain"
    assert env["HTTP_X_MULTI"] == "one,two"


def test_header_values_are_stripped_and_names_mapped(connect):
    env = echo(connect, request(headers=[("X-Dash-Name", "  padded\t ")]))["environ"]
    assert env["HTTP_X_DASH_NAME"] == "padded"


def test_underscore_header_is_dropped(connect):
    # X_Forwarded_For must not pass for X-Forwarded-For (header spoofing through CGI names)
    env = echo(connect, request(headers=[("X_Forwarded_For", "6.6.6.6")]))["environ"]
    assert "HTTP_X_FORWARDED_FOR" not in env


def test_non_ascii_is_latin1_native_string(connect):
    raw = "GET /caf%C3%A9/\u00e9 HTTP/1.1\r\nHost: h\r\nX-Name: caf\u00e9\r\n\r\n".encode("latin-1")
    raw = raw.replace("/\u00e9".encode("latin-1"), b"/%E9")
    env = echo(connect, raw)["environ"]
    # PEP 3333: bytes decoded as latin-1, so the app can re-encode them losslessly
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/\u00e9"
    assert env["PATH_INFO"].encode("latin-1") == b"/caf\xc3\xa9/\xe9"
    assert env["HTTP_X_NAME"] == "caf\u00e9"


def test_http_1_0_request(connect):
    seen = echo(connect, request(version="HTTP/1.0"))
    assert seen["environ"]["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert "HTTP_HOST" not in seen["environ"]


def test_absolute_form_target(connect):
    env = echo(connect, request(target="http://other.test/echo/abs?q=1"))["environ"]
    assert env["PATH_INFO"] == "/echo/abs"
    assert env["QUERY_STRING"] == "q=1"


def test_options_asterisk_is_answered_by_the_server(connect):
    client = connect()
    client.send(request("OPTIONS", "*"))
    response = client.response()
    assert response.status == 200
    assert response.body == b""
    assert response.header("Content-Length") == "0"
    client.send(request())  # and the connection goes on
    assert client.response().status == 200


@pytest.fixture(scope="module")
def mounted(server_factory):
    """A server mounted at /mnt that trusts X-Forwarded-* only from 127.0.0.2."""
    return server_factory("--script-name", "/mnt/", "--forwarded-allow-ips", "127.0.0.2")


@pytest.mark.parametrize(
    ("target", "script_name", "path_info"),
    [("/mnt/echo", "/mnt", "/echo"), ("/mnt", "/mnt", ""), ("/mnt/", "/mnt", "/")],
)
def test_script_name_setting(connect, mounted, target, script_name, path_info):
    env = echo(connect, request(target=target), target=mounted)["environ"]
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info
    assert env["SCRIPT_NAME"] + env["PATH_INFO"] == target


@pytest.mark.parametrize("target", ["/mntx/echo", "/healthz", "/"])
def test_path_outside_script_name_keeps_the_whole_path(connect, mounted, target):
    # PEP 3333: SCRIPT_NAME + PATH_INFO is always the request's path
    env = echo(connect, request(target=target), target=mounted)["environ"]
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == target


FORWARDED = [("X-Forwarded-For", "203.0.113.7, 198.51.100.1"), ("X-Forwarded-Proto", "https")]


def test_forwarded_headers_from_a_trusted_peer(connect, mounted):
    seen = echo(connect, request("GET", "/mnt/echo", FORWARDED), target=mounted, source="127.0.0.2")
    assert seen["environ"]["REMOTE_ADDR"] == "198.51.100.1"  # the rightmost: what the proxy saw
    assert seen["wsgi"]["wsgi.url_scheme"] == "https"


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(connect, mounted):
    seen = echo(connect, request("GET", "/mnt/echo", FORWARDED), target=mounted, source="127.0.0.1")
    assert seen["environ"]["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["wsgi"]["wsgi.url_scheme"] == "http"
    assert seen["environ"]["HTTP_X_FORWARDED_FOR"] == "203.0.113.7, 198.51.100.1"  # still visible

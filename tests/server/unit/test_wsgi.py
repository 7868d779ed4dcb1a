"""server.wsgi: start_response rules, write(), close(), the file wrapper and
wsgi.input, on a real socket pair (the client end is read back with
tests.support.rawhttp's Client: h11)."""

from __future__ import annotations

import io
import os
import select
import socket
import sys
import threading

import pytest
from wsgistack.http.connection import Connection
from wsgistack.http.parser import Limits
from wsgistack.wsgi import FileWrapper, WSGIHandler

from tests.support.rawhttp import Client


class Harness:
    """One connection: the server end in a Connection, the client end to talk and read."""

    def __init__(self, app, **options) -> None:
        self.client, server_end = socket.socketpair()
        self.client.settimeout(5)
        server_end.settimeout(5)
        self.conn = Connection(
            server_end, ("127.0.0.1", 5000), ("127.0.0.1", 8000), Limits(0, 0, 0, 0)
        )
        self.observed = []
        self.handler = WSGIHandler(
            app,
            multithread=False,
            forwarded_allow_ips=["127.0.0.1"],
            observe=lambda req, resp, env, duration: self.observed.append((resp, duration)),
            **options,
        )

    def serve(self, raw: bytes) -> bool:
        """Send ``raw``, parse what arrived, serve the first request; the keep-alive verdict."""
        self.client.sendall(raw)
        self.conn.receive()
        return self.handler.handle(self.conn, self.conn.parser.requests[0], True)

    def pending(self) -> bool:
        return bool(select.select([self.client], [], [], 0)[0])

    def response(self, method: str = "GET") -> tuple[int, dict, bytes]:
        """The response on the client end: (status, {lower-case name: value}, body)."""
        response = Client(self.client).response(method)
        return response.status, {k.lower(): v for k, v in response.headers}, response.body

    def close(self) -> None:
        self.client.close()
        self.conn.close()


@pytest.fixture
def harness():
    made = []

    def make(app, **options) -> Harness:
        made.append(Harness(app, **options))
        return made[-1]

    yield make
    for item in made:
        item.close()


GET = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"


def post(body: bytes) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


# -- start_response -----------------------------------------------------------------------


def test_headers_are_sent_only_with_the_first_non_empty_body_byte(harness):
    seen = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen.append(h.pending())  # after start_response: nothing sent
        yield b""
        seen.append(h.pending())  # after an empty piece: still nothing (PEP 3333)
        yield b"body"

    h = harness(app)
    assert h.serve(GET)
    assert seen == [False, False]
    status, _, body = h.response()
    assert (status, body) == (200, b"body")


def test_head_goes_out_with_the_first_piece(harness):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-A", "1")])
        yield b""
        yield b"one"
        yield b"two"

    h = harness(app)
    h.serve(GET)
    status, headers, body = h.response()
    assert (status, body) == (200, b"onetwo")
    assert headers["transfer-encoding"] == "chunked" and headers["x-a"] == "1"


def test_exc_info_before_headers_replaces_the_response(harness):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]

    h = harness(app)
    h.serve(GET)
    assert h.response()[0::2] == (500, b"replaced")


def test_exc_info_after_headers_re_raises_and_cuts_the_connection(harness):
    raised = []

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        error = ValueError("late")
        try:
            start_response("500 Oops", [], (ValueError, error, None))
        except ValueError as exc:
            raised.append(exc is error)
            raise
        return [b""]

    h = harness(app)
    assert h.serve(GET) is False  # the connection closes
    assert raised == [True]
    assert h.observed[0][0].status_code == 200


def test_start_response_twice_without_exc_info_is_an_error(harness):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    h = harness(app)
    assert h.serve(GET) is False
    assert h.response()[0] == 500


@pytest.mark.parametrize(
    "headers",
    [
        [("Bad Name", "v")],
        [("X-Name\n", "v")],  # a trailing newline in the name ends the head early
        [("X-A", "v\r\nInjected: 1")],
        [("X-A", "nul\x00")],
        [("X-A", 1)],
        [(b"X-A", "v")],
        ["X-A: v"],
        [("Connection", "close")],  # hop-by-hop: the server's, not the app's
        [("Transfer-Encoding", "chunked")],
        [("Keep-Alive", "timeout=5")],
        [("Content-Length", "ten")],
    ],
)
def test_invalid_or_hop_by_hop_headers_are_refused(harness, headers):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b"never"]

    for _ in range(2):  # the second time the name's verdict is remembered
        h = harness(app)
        assert h.serve(GET) is False
        status, _, body = h.response()
        assert status == 500 and b"never" not in body


@pytest.mark.parametrize(
    "status", ["200", "OK 200", "2000 X", 200, "200 OK\r\nX: y", "200 OK\n", "200\n OK"]
)
def test_invalid_status_is_refused(harness, status):
    def app(environ, start_response):
        start_response(status, [])
        return [b""]

    for _ in range(2):  # invalid each time: only valid ones are remembered
        h = harness(app)
        h.serve(GET)
        assert h.response()[0] == 500


def test_body_must_be_bytes(harness):
    def app(environ, start_response):
        start_response("200 OK", [])
        return ["text"]

    h = harness(app)
    h.serve(GET)
    assert h.response()[0] == 500


def test_server_sets_date_and_server_itself(harness):
    def app(environ, start_response):
        start_response("200 OK", [("Server", "app/1.0"), ("Date", "yesterday")])
        return [b"x"]

    h = harness(app)
    h.serve(GET)
    _, headers, _ = h.response()
    assert headers["server"] == "wsgistack" and headers["date"] != "yesterday"


# -- write(), framing, close() -----------------------------------------------------------


def test_write_then_iterable(harness):
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "9")])
        write(b"abc")
        write(b"def")
        return [b"ghi"]

    h = harness(app)
    assert h.serve(GET)
    assert h.response()[0::2] == (200, b"abcdefghi")


def test_more_than_content_length_is_truncated_and_closes(harness):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "3")])
        return [b"ab", b"cdef"]

    h = harness(app)
    assert h.serve(GET) is False
    assert h.response()[2] == b"abc"


def test_less_than_content_length_closes(harness):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        return [b"ab", b"c"]

    h = harness(app)
    assert h.serve(GET) is False


class Closing:
    def __init__(self, pieces, fail_at=None):
        self.pieces, self.fail_at, self.closed = list(pieces), fail_at, 0

    def __iter__(self):
        for i, piece in enumerate(self.pieces):
            if i == self.fail_at:
                raise RuntimeError("iteration fails")
            yield piece

    def close(self):
        self.closed += 1


@pytest.mark.parametrize("fail_at", [None, 1])
def test_close_is_called_once_on_success_and_on_error(harness, fail_at):
    body = Closing([b"a", b"b"], fail_at)

    def app(environ, start_response):
        start_response("200 OK", [])
        return body

    h = harness(app)
    h.serve(GET)
    assert body.closed == 1


def test_close_is_called_when_the_client_disconnects(harness):
    body = Closing([b"x" * 65536] * 200)

    def app(environ, start_response):
        start_response("200 OK", [])
        h.client.close()  # the client goes away before the body is sent
        return body

    h = harness(app)
    assert h.serve(GET) is False
    assert body.closed == 1
    assert h.observed[0][0].status_code == 200


# -- wsgi.file_wrapper ------------------------------------------------------------------------


def test_file_wrapper_uses_sendfile(harness, tmp_path, monkeypatch):
    data = os.urandom(200_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    calls = []
    real = os.sendfile
    monkeypatch.setattr(os, "sendfile", lambda *a: calls.append(a) or real(*a))
    opened = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        opened.append(open(path, "rb"))
        opened[0].seek(1000)  # from the current position
        return environ["wsgi.file_wrapper"](opened[0], 8192)

    h = harness(app)
    result = {}
    reader = threading.Thread(target=lambda: result.update(r=h.response()))
    reader.start()
    h.serve(GET)
    reader.join(10)
    status, headers, body = result["r"]
    assert body == data[1000:]
    assert headers["content-length"] == str(len(data) - 1000)
    assert calls  # the kernel copied the file
    assert opened[0].closed  # close() of the wrapper closes the file


def test_file_wrapper_of_a_non_file_iterates(harness):
    def app(environ, start_response):
        start_response("200 OK", [])
        return FileWrapper(io.BytesIO(b"in memory" * 10), 7)

    h = harness(app)
    h.serve(GET)
    assert h.response()[2] == b"in memory" * 10


# -- wsgi.input ---------------------------------------------------------------------------------

BODY = b"first line\nsecond line\n\nno newline at the end"


@pytest.mark.parametrize(
    "reader",
    [
        lambda f: f.read(),
        lambda f: f.read(None),
        lambda f: b"".join(iter(lambda: f.read(5), b"")),
        lambda f: b"".join(iter(f.readline, b"")),
        lambda f: b"".join(iter(lambda: f.readline(4), b"")),
        lambda f: b"".join(f.readlines()),
        lambda f: b"".join(f.readlines(15)) + f.read(),
        lambda f: b"".join(f),
    ],
    ids=["read", "read-none", "read-n", "readline", "readline-n", "readlines", "hint", "iter"],
)
def test_input_never_reads_past_the_body(harness, reader):
    got = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        got.append(reader(stream))
        got.append(stream.read(10))  # at the end: b"" at once
        start_response("200 OK", [])
        return [b""]

    h = harness(app)
    assert h.serve(post(BODY) + GET)
    assert got == [BODY, b""]
    assert h.conn.parser.requests[1].path == b"/p"  # the next request is intact


def test_input_reads_a_body_that_arrives_later(harness):
    def app(environ, start_response):
        data = environ["wsgi.input"].read(8)
        start_response("200 OK", [])
        return [data]

    h = harness(app)
    h.client.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\nabc")
    h.conn.receive()
    h.client.sendall(b"defgh")  # the rest comes after the head was parsed
    assert h.handler.handle(h.conn, h.conn.parser.requests[0], True)
    assert h.response()[2] == b"abcdefgh"


def test_unread_body_is_drained_for_the_next_request(harness):
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ignored the body"]

    h = harness(app)
    assert h.serve(post(b"x" * 100) + GET)
    assert h.conn.parser.requests[1].path == b"/p"


# -- environ ---------------------------------------------------------------------------------


def test_environ_from_a_unix_socket_peer_is_trusted(harness):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    h = harness(app)
    h.conn.peer = ("", 0)
    h.serve(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
    assert seen["REMOTE_ADDR"] == "1.2.3.4"


def test_forwarded_proto_other_than_http_or_https_is_ignored(harness):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    h = harness(app)
    h.serve(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: javascript\r\n\r\n")
    assert seen["wsgi.url_scheme"] == "http"


def test_each_request_of_a_connection_gets_its_own_environ(harness):
    seen = []

    def app(environ, start_response):
        seen.append(dict(environ))
        environ["REMOTE_ADDR"] = "changed by the app"  # PEP 3333 lets apps edit their environ
        environ["wsgi.url_scheme"] = "https"
        environ["myapp.note"] = "first"
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    h = harness(app)
    assert h.serve(b"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
    h.conn.parser.requests.popleft()
    assert h.serve(GET)
    first, second = seen
    assert (first["REMOTE_ADDR"], second["REMOTE_ADDR"]) == ("1.2.3.4", "127.0.0.1")
    assert (second["PATH_INFO"], second["wsgi.url_scheme"]) == ("/p", "http")
    assert "myapp.note" not in second and "HTTP_X_FORWARDED_FOR" not in second
    assert second["wsgi.input"] is not first["wsgi.input"]

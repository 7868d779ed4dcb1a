"""Invalid requests: each gets the exact status and a closed connection, and the
next request, on a new connection, is served normally (nothing is poisoned).

The cases are the request-smuggling vectors of RFC 9112 §6.1, §6.3 and §11.2,
the limits (414, 431, 413), the slow-head timeout (408) and unsupported
versions (505).
"""

from __future__ import annotations

import time

import pytest

from tests.support.rawhttp import request

HEAD = b"POST /echo HTTP/1.1\r\nHost: h\r\n"

CASES = {
    # RFC 9112 §6.1: Transfer-Encoding and Content-Length together
    "te-and-cl": (400, HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "cl-and-te": (400, HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
    # RFC 9112 §6.3: a final coding other than chunked cannot be framed: 400
    "te-gzip": (400, HEAD + b"Transfer-Encoding: gzip\r\n\r\n"),
    "te-identity": (400, HEAD + b"Transfer-Encoding: identity\r\n\r\n"),
    "te-chunked-then-gzip": (400, HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n"),
    "te-chunked-line-then-gzip-line": (
        400,
        HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
    ),
    # RFC 9112 §6.1: a coding we don't implement before a final chunked: 501
    "te-gzip-then-chunked": (501, HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n"),
    "te-in-http-1.0": (
        400,
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    # RFC 9112 §6.3: duplicated or malformed Content-Length
    "cl-twice-same": (400, HEAD + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
    "cl-twice-different": (400, HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    "cl-list": (400, HEAD + b"Content-Length: 3, 3\r\n\r\nabc"),
    "cl-plus-sign": (400, HEAD + b"Content-Length: +3\r\n\r\nabc"),
    "cl-negative": (400, HEAD + b"Content-Length: -3\r\n\r\nabc"),
    "cl-not-a-number": (400, HEAD + b"Content-Length: abc\r\n\r\n"),
    "cl-hex": (400, HEAD + b"Content-Length: 0x3\r\n\r\nabc"),
    # RFC 9112 §2.2: bare CR or LF in the head
    "bare-lf": (400, b"GET /echo HTTP/1.1\nHost: h\n\n"),
    "bare-cr-in-field": (400, b"GET /echo HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n"),
    "bare-cr-in-line": (400, b"GET /echo\r HTTP/1.1\r\nHost: h\r\n\r\n"),
    # RFC 9112 §5.1: no whitespace between the field name and the colon
    "space-before-colon": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n"),
    "tab-before-colon": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A\t: b\r\n\r\n"),
    "no-colon": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n"),
    # RFC 9110 §5.1, §5.5: invalid header name and value characters
    "bad-name-char": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n"),
    "empty-name": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n"),
    "ctl-in-value": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A: b\x01c\r\n\r\n"),
    "nul-in-value": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A: b\x00c\r\n\r\n"),
    # RFC 9112 §5.2: obs-fold is rejected
    "obs-fold": (400, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n"),
    # RFC 9112 §7.1: invalid chunk sizes and chunk framing
    "chunk-size-not-hex": (400, HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-overflow": (
        400,
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ),
    "chunk-size-negative": (
        400,
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
    ),
    "chunk-data-too-long": (
        400,
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    ),
    "chunk-bad-extension": (
        400,
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n",
    ),
    # RFC 9112 §3: the request line
    "lower-case-method": (400, b"get /echo HTTP/1.1\r\nHost: h\r\n\r\n"),
    "space-in-target": (400, b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"),
    "two-spaces-before-target": (400, b"GET  /echo HTTP/1.1\r\nHost: h\r\n\r\n"),
    "two-spaces-after-target": (400, b"GET /echo  HTTP/1.1\r\nHost: h\r\n\r\n"),
    "two-spaces-no-fields": (400, b"GET  /echo HTTP/1.0\r\n\r\n"),
    "no-version": (505, b"GET /echo\r\n\r\n"),  # HTTP/0.9
    "bad-protocol-name": (400, b"GET /echo HTTX/1.1\r\nHost: h\r\n\r\n"),
    "http-2.0": (505, b"GET /echo HTTP/2.0\r\nHost: h\r\n\r\n"),
    "http-3.0": (505, b"GET /echo HTTP/3.0\r\nHost: h\r\n\r\n"),
    "http2-preface": (505, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1
    "no-host": (400, b"GET /echo HTTP/1.1\r\n\r\n"),
    "two-hosts": (400, b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "asterisk-not-options": (400, b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
    "connect": (501, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
    # the limits of the main server: line 1024, 20 fields of 512 bytes, body 65536
    "request-line-too-long": (414, request(target="/echo?" + "a" * 1100)),
    "too-many-fields": (431, request(headers=[(f"X-{i}", "v") for i in range(25)])),
    "field-too-large": (431, request(headers=[("X-Big", "v" * 600)])),
    "body-over-limit-by-length": (413, request("POST", "/echo", body=b"x" * 70_000)),
    "body-over-limit-chunked": (
        413,
        HEAD
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"8000\r\n"
        + b"x" * 0x8000
        + b"\r\n" * 1
        + b"8000\r\n"
        + b"x" * 0x8000
        + b"\r\n"
        + b"10\r\n"
        + b"x" * 16
        + b"\r\n0\r\n\r\n",
    ),
}


@pytest.mark.parametrize(("status", "payload"), CASES.values(), ids=CASES.keys())
def test_invalid_request_gets_its_status_and_a_closed_connection(connect, status, payload):
    client = connect()
    # a valid request first on the same connection: it is answered, the invalid one refused
    client.send(request(target="/echo?before") + payload)
    assert client.response().json()["environ"]["QUERY_STRING"] == "before"
    response = client.response("POST")
    assert response.status == status, response.raw
    assert response.header("Connection") == "close"
    assert client.closed()
    fresh = connect()  # nothing is poisoned: a new connection is served normally
    fresh.send(request(target="/echo?after"))
    assert fresh.response().json()["environ"]["QUERY_STRING"] == "after"


def test_smuggled_request_is_never_answered(connect):
    """A CL.TE desync attempt: the bytes after the refusal are not parsed as a request."""
    client = connect()
    smuggled = request(target="/echo?smuggled")
    client.send(
        HEAD
        + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled))
        + smuggled
    )
    raw = client.read_all()
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"smuggled" not in raw
    assert raw.count(b"HTTP/1.1") == 1


def test_large_body_over_limit_gets_413_before_the_body_is_sent(connect):
    client = connect()
    client.send(request("POST", "/echo", [("Content-Length", "10000000")]))
    response = client.response("POST")
    assert response.status == 413
    assert client.closed()


def test_body_over_limit_while_the_client_keeps_sending(connect):
    """The 413 reaches a client that is still uploading (lingering close, no RST first)."""
    client = connect()
    client.send(request("POST", "/echo", [("Content-Length", "1000000")]))
    client.sock.settimeout(0.5)
    sent = 0
    try:
        while sent < 1_000_000:
            sent += client.sock.send(b"x" * 65536)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    client.sock.settimeout(10)
    assert client.response("POST").status == 413


def test_a_field_in_flight_is_refused_before_it_ends(connect):
    """1 MiB of one unfinished field (no CRLF): 431 while it streams, not a 408 after
    --client-header-timeout, so the server never buffers the whole of it."""
    client = connect()
    client.send(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: ")
    client.sock.settimeout(0.5)
    sent = 0
    try:
        while sent < 1 << 20:
            sent += client.sock.send(b"a" * 65536)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    client.sock.settimeout(10)
    response = client.response()
    assert response.status == 431, response.raw
    assert response.header("Connection") == "close"
    assert client.closed()


def test_slow_request_head_gets_408_then_close(connect):
    client = connect()  # the main server: --client-header-timeout 2
    client.send(b"GET /echo HTTP/1.1\r\nHost: h\r\n")  # ...and never the blank line
    started = time.monotonic()
    response = client.response()
    print(f"408 after {time.monotonic() - started:.1f} s (--client-header-timeout 2)")
    assert response.status == 408
    assert response.header("Connection") == "close"
    assert client.closed()


def test_slow_body_does_not_get_408(connect):
    """The head timeout is for the head only; a body trickling in is the app's to read."""
    client = connect()
    client.send(request("POST", "/echo", [("Content-Length", "4")]) + b"ab")
    time.sleep(2.5)
    client.send(b"cd")
    assert client.response("POST").json()["body"] == "abcd"


@pytest.mark.parametrize("threads", ["1", "4"])
def test_refusal_ends_with_a_clean_close_not_a_reset(connect, server_factory, threads):
    """Lingering close: the server half-closes after a refusal and reads what the
    client still sends, so the client sees the 413 and then EOF, never a reset
    (a reset can destroy the response before the client has read it)."""
    target = server_factory("--threads", threads, "--limit-request-body", "1000")
    client = connect(target)
    client.send(request("POST", "/echo", [("Content-Length", "1000000")]) + b"x" * 200_000)
    assert client.response("POST").status == 413
    assert client.sock.recv(1) == b""  # FIN; ConnectionResetError without lingering
    fresh = connect(target)
    fresh.send(request(target="/pid"))
    assert fresh.response().status == 200


def test_refused_head_with_pipelined_junk_ends_with_a_clean_close(connect):
    client = connect()
    client.send(b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n" + b"junk" * 50_000)
    assert client.response().status == 400
    assert client.sock.recv(1) == b""

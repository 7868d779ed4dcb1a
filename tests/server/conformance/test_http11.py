"""HTTP/1.1 behaviour on the wire (RFC 9112, RFC 9110): persistence, pipelining,
Expect: 100-continue, body framing, responses without a body, Date and Server."""

from __future__ import annotations

import json
import os
import time
from email.utils import parsedate_to_datetime

import pytest

from tests.support import wait_until
from tests.support.rawhttp import request

# -- persistence and pipelining ------------------------------------------------


def test_keep_alive_serves_several_requests(connect):
    client = connect()
    for i in range(3):
        client.send(request(target=f"/echo?i={i}"))
        response = client.response()
        assert response.status == 200
        assert response.header("Connection") is None
        assert response.json()["environ"]["QUERY_STRING"] == f"i={i}"


def test_pipelined_requests_are_answered_in_order(connect):
    client = connect()
    client.send(
        request(target="/sleep?s=0.3")
        + request("POST", "/echo?i=1", body=b"first body")
        + request(target="/echo?i=2")
        + request("HEAD", "/echo?i=3")
        + request(target="/stream?n=2")
        + request(target="/echo?i=5")
    )
    assert "pid" in client.response().json()
    first = client.response().json()
    assert (first["environ"]["QUERY_STRING"], first["body"]) == ("i=1", "first body")
    assert client.response().json()["environ"]["QUERY_STRING"] == "i=2"
    head = client.response("HEAD")
    assert (head.status, head.body) == (200, b"")
    assert client.response().body == b"chunk 0\nchunk 1\n"
    assert client.response().json()["environ"]["QUERY_STRING"] == "i=5"


def test_connection_close_is_honoured(connect):
    client = connect()
    client.send(request(headers=[("Connection", "close")]) + request(target="/never"))
    response = client.response()
    assert response.status == 200
    assert response.header("Connection") == "close"
    assert client.closed()  # the pipelined second request is not answered


def test_http_1_0_closes_by_default(connect):
    client = connect()
    client.send(request(version="HTTP/1.0"))
    response = client.response()
    assert response.header("Connection") == "close"
    assert client.closed()


def test_http_1_0_keep_alive_on_request(connect):
    client = connect()
    for _ in range(2):
        client.send(request(version="HTTP/1.0", headers=[("Connection", "keep-alive")]))
        response = client.response()
        assert response.status == 200
        assert response.header("Connection") == "keep-alive"


def test_http_1_0_streamed_response_is_delimited_by_close(connect):
    client = connect()
    client.send(
        request(target="/stream?n=3", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
    )
    response = client.response()
    assert response.header("Transfer-Encoding") is None
    assert response.header("Connection") == "close"
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert client.closed()


def test_idle_keep_alive_connection_is_closed_after_keep_alive_seconds(connect):
    client = connect()  # the main server: --keep-alive 2
    client.send(request())
    assert client.response().status == 200
    time.sleep(0.3)  # well inside the idle timeout: still open
    client.send(request())
    assert client.response().status == 200
    started = time.monotonic()
    assert client.closed()  # blocks until the server closes (socket timeout 10 s)
    print(f"idle connection closed after {time.monotonic() - started:.1f} s (--keep-alive 2)")


def test_head_timeout_counts_from_the_first_byte_of_the_head_not_from_idle(connect, server_factory):
    """--client-header-timeout bounds the time to send a head, not keep-alive idleness:
    a connection idle longer than it (nginx keeps upstream connections for 60 s) whose
    next head arrives in two pieces is served, not answered 408."""
    target = server_factory("--keep-alive", "10", "--client-header-timeout", "3")
    client = connect(target)
    client.send(request())
    assert client.response().status == 200
    time.sleep(4)  # idle: longer than the head timeout, within --keep-alive
    client.send(b"GET /echo?late HTTP/1.1\r\n")
    time.sleep(1.2)  # an idle sweep (every 1 s) sees the half head
    client.send(b"Host: h\r\n\r\n")
    response = client.response()
    assert response.status == 200
    assert response.json()["environ"]["QUERY_STRING"] == "late"


# -- Expect: 100-continue ----------------------------------------------------------


def test_100_continue_is_sent_when_the_app_reads_the_body(connect):
    client = connect()
    client.send(request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "5")]))
    interim = client.sock.recv(1024)  # before we send any body byte
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"hello")
    response = client.response("POST")
    assert response.status == 200
    assert response.json()["body"] == "hello"
    client.send(request())  # the connection goes on
    assert client.response().status == 200


def test_no_100_continue_when_the_app_does_not_read_the_body(connect):
    client = connect()
    client.send(request("POST", "/pid", [("Expect", "100-continue"), ("Content-Length", "1000")]))
    response = client.response("POST")
    assert response.status == 200
    assert response.interim == []  # no 100 before the final answer
    # the body never came and was not asked for: the server says it closes, and does
    assert response.header("Connection") == "close"
    assert client.closed()


# -- request bodies ----------------------------------------------------------------

LINES = b"line one\nline two\n\nlast line without newline"


@pytest.mark.parametrize("mode", ["all", "once", "line", "lines", "iter"])
def test_content_length_body_read_every_way_stops_at_the_message_end(connect, mode):
    client = connect()
    # the next request follows the body in the same packet: reading past the
    # end of the body would eat it
    client.send(request("POST", f"/echo?read={mode}", body=LINES) + request(target="/echo?next"))
    seen = client.response("POST").json()
    assert seen["body"] == LINES.decode()
    assert seen["after"] == ""
    assert client.response().json()["environ"]["QUERY_STRING"] == "next"


def chunked(body: bytes, size: int = 7, trailers: bytes = b"") -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x;ext=%d\r\n%s\r\n" % (len(piece), i, piece)
    return out + b"0\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("mode", ["all", "once", "line", "iter"])
def test_chunked_body_with_trailers_stops_at_the_message_end(connect, mode):
    client = connect()
    client.send(
        request("POST", f"/echo?read={mode}", [("Transfer-Encoding", "chunked")])
        + chunked(LINES, trailers=b"X-Checksum: 42\r\n")
        + request(target="/echo?next")
    )
    seen = client.response("POST").json()
    assert seen["body"] == LINES.decode()
    assert "HTTP_TRANSFER_ENCODING" not in seen["environ"]  # the server decoded it
    assert "CONTENT_LENGTH" not in seen["environ"]
    assert client.response().json()["environ"]["QUERY_STRING"] == "next"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_unread_body_is_skipped_and_the_next_request_parses(connect, framing):
    body = b"x" * 50_000
    if framing == "length":
        first = request("POST", "/pid", body=body)
    else:
        first = request("POST", "/pid", [("Transfer-Encoding", "chunked")]) + chunked(body, 4096)
    client = connect()
    client.send(first + request(target="/echo?next"))
    assert client.response("POST").status == 200
    assert client.response().json()["environ"]["QUERY_STRING"] == "next"


def test_body_sent_slowly_in_pieces(connect):
    client = connect()
    client.send(request("POST", "/echo", [("Content-Length", "12")]))
    for piece in (b"abc", b"def", b"ghijkl"):
        time.sleep(0.05)
        client.send(piece)
    assert client.response("POST").json()["body"] == "abcdefghijkl"


# -- responses -----------------------------------------------------------------------


def test_date_and_server_headers(connect):
    client = connect()
    client.send(request())
    response = client.response()
    date = parsedate_to_datetime(response.header("Date"))
    assert response.header("Date").endswith(" GMT")  # IMF-fixdate, RFC 9110 §5.6.7
    assert abs(date.timestamp() - time.time()) < 60
    assert response.header("Server") == "wsgistack"  # no version disclosed
    assert len([k for k, _ in response.headers if k.lower() == "date"]) == 1


def test_head_has_no_body_but_the_get_headers(connect):
    client = connect()
    client.send(request("GET", "/status?code=200") + request("HEAD", "/status?code=200"))
    get, head = client.response(), client.response("HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.raw.endswith(b"\r\n\r\n")
    assert head.header("Content-Type") == get.header("Content-Type")
    client.send(request())  # the framing held
    assert client.response().status == 200


def test_head_of_a_stream_has_no_body(connect):
    client = connect()
    client.send(request("HEAD", "/stream?n=3") + request(target="/echo?next"))
    head = client.response("HEAD")
    assert head.raw.endswith(b"\r\n\r\n") and head.body == b""
    assert client.response().json()["environ"]["QUERY_STRING"] == "next"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_for_204_and_304(connect, code):
    client = connect()
    client.send(request(target=f"/status?code={code}") + request(target="/echo?next"))
    response = client.response()
    assert response.status == code
    assert response.raw.endswith(b"\r\n\r\n") and response.body == b""
    assert response.header("Transfer-Encoding") is None
    if code == 204:
        assert response.header("Content-Length") is None  # RFC 9110 §8.6
    assert client.response().json()["environ"]["QUERY_STRING"] == "next"


def test_unknown_length_is_chunked_for_http_1_1(connect):
    client = connect()
    client.send(request(target="/stream?n=3") + request(target="/echo?next"))
    response = client.response()
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.header("Content-Length") is None
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert b"8\r\nchunk 0\n\r\n" in response.raw
    assert client.response().status == 200


def test_write_callable(connect):
    client = connect()
    client.send(request(target="/write"))
    assert client.response().body == b"written 1\nwritten 2\nreturned\n"


def test_exc_info_replaces_a_response_not_yet_sent(connect):
    client = connect()
    client.send(request(target="/exc-info"))
    response = client.response()
    assert (response.status, response.body) == (503, b"replaced\n")


def test_app_error_before_the_response_is_500_and_close(connect, server):
    server.expect_log("the recorder fails on purpose")
    client = connect()
    client.send(request(target="/error"))
    response = client.response()
    assert response.status == 500
    assert response.header("Connection") == "close"
    assert client.closed()


def test_app_error_mid_body_cuts_the_connection(connect, server):
    server.expect_log("the recorder fails on purpose, mid-body")
    client = connect()
    client.send(request(target="/error-late"))
    raw = client.read_all()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"6\r\nfirst\n\r\n")  # no last chunk: the client sees it incomplete


def test_close_is_called_when_the_client_disconnects(connect, tmp_path):
    client = connect()
    client.send(request(target=f"/close?dir={tmp_path}"))
    assert client.sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
    client.close()
    marker = tmp_path / "closed"
    assert wait_until(marker.exists)
    assert wait_until(lambda: marker.read_text() != "")
    assert int(marker.read_text()) < 200  # the server stopped iterating, then closed


def test_every_response_parses_as_json_where_promised(connect):
    """A sanity check of the recorder itself: its JSON is what tests read."""
    client = connect()
    client.send(request(target="/pid"))
    assert json.loads(client.response().body)["pid"] != os.getpid()

"""Unit tests of the demo app (wsgistack_demo.wsgi), each call checked by
wsgiref.validate (PEP 3333)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from wsgistack_demo.wsgi import GREETING, READ_SIZE, ROUTE_ENVIRON_KEY, application

APP = validator(application)


class CountingInput(io.BytesIO):
    """A wsgi.input that records the size asked for by every read()."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(size)
        return super().read(size)


def call(
    path: str,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    **extra: object,
) -> tuple[str, dict[str, str], bytes]:
    """Run the validated app on a fake environ; returns (status, headers, body)."""
    environ: dict[str, object] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": extra.pop("wsgi_input", None) or io.BytesIO(body),
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ.update(extra)
    setup_testing_defaults(environ)
    result: dict[str, object] = {}

    def start_response(status, response_headers, exc_info=None):
        result["status"], result["headers"] = status, dict(response_headers)
        return lambda data: None

    iterable = APP(environ, start_response)
    try:
        data = b"".join(iterable)
    finally:
        iterable.close()
    return result["status"], result["headers"], data


def call_json(*args, **kwargs) -> tuple[str, dict[str, str], object]:
    """Like call(), decoding a JSON body after checking its framing headers."""
    status, headers, body = call(*args, **kwargs)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    return status, headers, json.loads(body)


def test_index_greets_in_plain_text():
    status, headers, body = call("/")
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert body == b"Hello from the WSGI stack!\n" == GREETING


def test_empty_path_info_is_the_index():
    assert call("")[2] == GREETING


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/healthz", {"status": "ok"}),
        ("/readyz", {"status": "ready"}),
    ],
)
def test_probes(path, payload):
    assert call_json(path)[::2] == ("200 OK", payload)


def test_readyz_is_503_while_the_dependency_is_down(tmp_path, monkeypatch):
    down = tmp_path / "dependency-down"
    monkeypatch.setattr("wsgistack_demo.wsgi.DEPENDENCY_DOWN_FILE", str(down))
    assert call_json("/readyz")[::2] == ("200 OK", {"status": "ready"})
    down.touch()
    status, _, payload = call_json("/readyz")
    assert status == "503 Service Unavailable"
    assert payload["status"] == "unready"
    assert call_json("/healthz")[0] == "200 OK"  # alive all the same
    down.unlink()
    assert call_json("/readyz")[0] == "200 OK"


@pytest.fixture
def slowdown(tmp_path, monkeypatch):
    """SLOWDOWN_FILE in a temporary folder, looked at on every request."""
    path = tmp_path / "slowdown-ms"
    monkeypatch.setattr("wsgistack_demo.wsgi.SLOWDOWN_FILE", str(path))
    monkeypatch.setattr("wsgistack_demo.wsgi.SLOWDOWN_CHECK_INTERVAL", 0.0)
    return path


def _seconds(path: str) -> float:
    started = time.monotonic()
    call(path)
    return time.monotonic() - started


def test_the_slowdown_file_delays_every_request_but_the_probes(slowdown):
    assert _seconds("/") < 0.1
    slowdown.write_text("300\n")
    assert 0.3 <= _seconds("/") < 1.0
    assert 0.3 <= _seconds("/nope") < 1.0  # a 404 too: the whole app is slower
    assert _seconds("/healthz") < 0.1 and _seconds("/readyz") < 0.1
    slowdown.unlink()
    assert _seconds("/") < 0.1


@pytest.mark.parametrize("content", ["", "slow", "-5", "60001", "1.5"])
def test_a_slowdown_file_without_milliseconds_0_to_60000_delays_nothing(slowdown, content):
    slowdown.write_text(content)
    assert _seconds("/") < 0.1


def test_echo_announces_itself_with_x_powered_by():
    assert call("/api/echo")[1]["X-Powered-By"] == "wsgistack-demo"


def test_echo_sends_the_cache_control_asked_for_if_it_is_plain():
    sent = call("/api/echo", query="cache_control=private,%20no-transform")[1]
    assert sent["Cache-Control"] == "private, no-transform"
    assert "Cache-Control" not in call("/api/echo")[1]
    assert "Cache-Control" not in call("/api/echo", query="cache_control=a%0d%0aX-Forged:%201")[1]


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz"])
def test_get_endpoints_answer_head(path):
    assert call(path, method="HEAD")[0] == "200 OK"


def test_echo_reports_the_request():
    status, _, data = call_json(
        "/api/echo",
        method="PUT",
        query="a=1&a=2&b=x%20y",
        body=b"x" * 1000,
        headers={"X-Forwarded-Proto": "https", "X-Request-ID": "abc"},
        CONTENT_TYPE="application/octet-stream",
        SCRIPT_NAME="/mount",
        REMOTE_ADDR="10.0.0.7",
        SERVER_PROTOCOL="HTTP/1.1",
    )
    assert status == "200 OK"
    assert data["method"] == "PUT"
    assert data["path"] == "/mount/api/echo"
    assert data["query"] == "a=1&a=2&b=x%20y"
    assert data["args"] == {"a": ["1", "2"], "b": ["x y"]}
    assert data["headers"]["X-Forwarded-Proto"] == "https"
    assert data["headers"]["X-Request-Id"] == "abc"
    assert data["headers"]["Content-Type"] == "application/octet-stream"
    assert data["headers"]["Content-Length"] == "1000"
    assert data["remote_addr"] == "10.0.0.7"
    assert data["scheme"] == "http"
    assert data["server_protocol"] == "HTTP/1.1"
    assert data["body_size"] == 1000
    assert data["hostname"] == socket.gethostname()
    assert data["pid"] == os.getpid()


def test_echo_scheme():
    assert call_json("/api/echo", **{"wsgi.url_scheme": "https"})[2]["scheme"] == "https"


def test_paths_are_reported_as_utf8():
    """PATH_INFO holds the raw bytes as latin-1 (PEP 3333); the JSON shows the real text."""
    _, _, data = call_json("/caf\u00e9".encode().decode("latin-1"))
    assert data == {"error": "not found", "path": "/caf\u00e9"}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PATCH", "OPTIONS"])
def test_echo_accepts_any_method(method):
    assert call_json("/api/echo", method=method)[2]["method"] == method


def test_body_reads_stop_at_content_length():
    """Without wsgi.input_terminated, bytes past CONTENT_LENGTH are never read."""
    stream = CountingInput(b"y" * (3 * READ_SIZE + 5) + b"NEXT REQUEST")
    _, _, data = call_json(
        "/api/upload", method="POST", wsgi_input=stream, CONTENT_LENGTH=str(3 * READ_SIZE + 5)
    )
    assert data == {
        "bytes": 3 * READ_SIZE + 5,
        "sha256": hashlib.sha256(b"y" * (3 * READ_SIZE + 5)).hexdigest(),
    }
    assert stream.sizes == [READ_SIZE, READ_SIZE, READ_SIZE, 5]


def test_body_without_content_length_is_empty():
    stream = CountingInput(b"unframed")
    assert call_json("/api/echo", method="POST", wsgi_input=stream)[2]["body_size"] == 0
    assert stream.sizes == []


def test_terminated_input_is_read_to_eof_in_pieces():
    """wsgi.input_terminated (e.g. a chunked body): read to EOF, READ_SIZE at a time."""
    body = os.urandom(2 * READ_SIZE + 1)
    stream = CountingInput(body)
    _, _, data = call_json(
        "/api/upload", method="POST", wsgi_input=stream, **{"wsgi.input_terminated": True}
    )
    assert data == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert stream.sizes == [READ_SIZE] * 4


def test_upload_hashes_a_known_body():
    status, _, data = call_json("/api/upload", method="POST", body=b"abc")
    assert status == "200 OK"
    assert data == {
        "bytes": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }


def test_upload_of_nothing():
    assert call_json("/api/upload", method="POST")[2] == {
        "bytes": 0,
        "sha256": hashlib.sha256(b"").hexdigest(),
    }


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_upload_is_post_only(method):
    status, headers, data = call_json("/api/upload", method=method)
    assert status == "405 Method Not Allowed"
    assert headers["Allow"] == "POST"
    assert "error" in data


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/readyz", "/api/work", "/api/sleep", "/api/stream", "/api/status"]
)
def test_get_only_endpoints_refuse_post(path):
    status, headers, _ = call_json(path, method="POST", query="ms=0&code=200")
    assert status == "405 Method Not Allowed"
    assert headers["Allow"] == "GET, HEAD"


def test_work_burns_cpu_for_the_asked_time():
    started = time.perf_counter()
    status, _, data = call_json("/api/work", query="ms=50")
    elapsed = time.perf_counter() - started
    assert status == "200 OK"
    assert data["ms"] == 50
    assert data["iterations"] > 0
    assert 0.05 <= elapsed < 1


def test_work_zero_does_nothing():
    assert call_json("/api/work", query="ms=0")[2] == {"ms": 0, "iterations": 0}


def test_sleep_waits_the_asked_time():
    started = time.perf_counter()
    status, _, data = call_json("/api/sleep", query="ms=30")
    assert 0.03 <= time.perf_counter() - started < 1
    assert (status, data) == ("200 OK", {"ms": 30})


def test_sleep_zero():
    assert call_json("/api/sleep", query="ms=0")[2] == {"ms": 0}


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/api/work", "", "parameter 'ms' is required"),
        ("/api/work", "ms=", "parameter 'ms' is required"),
        ("/api/work", "ms=abc", "parameter 'ms' must be an integer, got 'abc'"),
        ("/api/work", "ms=1.5", "parameter 'ms' must be an integer, got '1.5'"),
        ("/api/work", "ms=1_000", "parameter 'ms' must be an integer, got '1_000'"),
        ("/api/work", "ms=%205", "parameter 'ms' must be an integer, got ' 5'"),
        ("/api/work", "ms=-1", "parameter 'ms' must be between 0 and 10000, got -1"),
        ("/api/work", "ms=10001", "parameter 'ms' must be between 0 and 10000, got 10001"),
        ("/api/sleep", "ms=60001", "parameter 'ms' must be between 0 and 60000, got 60001"),
        ("/api/sleep", "ms=-5", "parameter 'ms' must be between 0 and 60000, got -5"),
        (
            "/api/sleep",
            "ms=" + "9" * 5000,
            "parameter 'ms' must be an integer, got '" + "9" * 20 + "'",
        ),
        ("/api/stream", "chunks=0", "parameter 'chunks' must be between 1 and 10000, got 0"),
        (
            "/api/stream",
            "chunks=10001",
            "parameter 'chunks' must be between 1 and 10000, got 10001",
        ),
        ("/api/stream", "size=0", "parameter 'size' must be between 1 and 65536, got 0"),
        ("/api/stream", "size=65537", "parameter 'size' must be between 1 and 65536, got 65537"),
        ("/api/stream", "size=big", "parameter 'size' must be an integer, got 'big'"),
        ("/api/status", "", "parameter 'code' is required"),
        ("/api/status", "code=199", "parameter 'code' must be between 200 and 599, got 199"),
        ("/api/status", "code=600", "parameter 'code' must be between 200 and 599, got 600"),
    ],
)
def test_bad_parameters_answer_400(path, query, message):
    status, _, data = call_json(path, query=query)
    assert status == "400 Bad Request"
    assert data == {"error": message}


def test_work_and_sleep_accept_their_upper_bounds(monkeypatch):
    """The bounds themselves are valid; time is faked so the test stays fast."""
    clock = iter(range(0, 100, 4))  # deadline 10 s: checks at 4, 8, 12
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    assert call_json("/api/work", query="ms=10000")[2] == {"ms": 10000, "iterations": 2}
    assert call_json("/api/sleep", query="ms=60000")[2] == {"ms": 60000}
    assert slept == [60.0]


def test_stream_defaults():
    status, headers, body = call("/api/stream")
    assert status == "200 OK"
    assert "Content-Length" not in headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = body.splitlines(keepends=True)
    assert len(body) == 10 * 1024
    assert [line[:10] for line in lines] == [f"chunk {i:04d}".encode() for i in range(10)]
    assert all(len(line) == 1024 and line.endswith(b".\n") for line in lines)


def test_stream_yields_one_item_per_chunk():
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/stream",
        "QUERY_STRING": "chunks=7&size=100",
        "wsgi.input": io.BytesIO(),
    }
    setup_testing_defaults(environ)
    iterable = APP(environ, lambda status, headers, exc_info=None: None)
    try:
        items = list(iterable)
    finally:
        iterable.close()
    assert len(items) == 7
    assert items[6] == b"chunk 0006" + b"." * 89 + b"\n"


@pytest.mark.parametrize(
    ("size", "first"),
    [
        (1, b"\n"),
        (5, b"chun\n"),
        (11, b"chunk 0000\n"),
        (12, b"chunk 0000.\n"),
    ],
)
def test_stream_chunks_are_exactly_size_bytes(size, first):
    body = call("/api/stream", query=f"chunks=3&size={size}")[2]
    assert len(body) == 3 * size
    assert body[:size] == first


def test_stream_upper_bounds():
    body = call("/api/stream", query="chunks=10000&size=11")[2]
    assert body.splitlines()[-1] == b"chunk 9999"
    assert len(call("/api/stream", query="chunks=1&size=65536")[2]) == 65536


def test_stream_can_be_closed_early():
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/stream",
        "QUERY_STRING": "chunks=10000",
        "wsgi.input": io.BytesIO(),
    }
    setup_testing_defaults(environ)
    iterable = application(environ, lambda status, headers, exc_info=None: None)
    assert next(iter(iterable)).startswith(b"chunk 0000")
    iterable.close()
    with pytest.raises(StopIteration):
        next(iter(iterable))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, "200 OK"),
        (404, "404 Not Found"),
        (418, "418 I'm a Teapot"),
        (500, "500 Internal Server Error"),
        (503, "503 Service Unavailable"),
        (599, "599 Status 599"),
    ],
)
def test_status_answers_the_asked_code(code, status):
    got, _, data = call_json("/api/status", query=f"code={code}")
    assert (got, data) == (status, {"status": code})


@pytest.mark.parametrize(("code", "status"), [(204, "204 No Content"), (304, "304 Not Modified")])
def test_status_without_body(code, status):
    assert call("/api/status", query=f"code={code}") == (status, {}, b"")


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/echo/", "/static/style.css"])
def test_unknown_paths_answer_404(path):
    status, _, data = call_json(path, method="DELETE")
    assert status == "404 Not Found"
    assert data == {"error": "not found", "path": path}


def test_exceptions_propagate_to_the_server():
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/upload",
        "CONTENT_LENGTH": "3",
    }
    setup_testing_defaults(environ)

    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError("client went away")

    environ["wsgi.input"] = Broken()
    with pytest.raises(OSError, match="client went away"):
        application(environ, lambda status, headers, exc_info=None: None)


def _route_after(path: str, method: str = "GET", query: str = "") -> object:
    """What the app left in environ["wsgistack.http_route"] after answering."""
    environ = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path}
    environ["QUERY_STRING"] = query
    setup_testing_defaults(environ)
    b"".join(application(environ, lambda status, headers, exc_info=None: None))
    return environ.get(ROUTE_ENVIRON_KEY)


@pytest.mark.parametrize(
    ("path", "method", "query"),
    [
        ("/", "GET", ""),
        ("/api/status", "GET", "code=500"),
        ("/api/status", "GET", "code=abc"),  # 400 from a known route
        ("/api/upload", "GET", ""),  # 405 from a known route
    ],
)
def test_matched_requests_tell_the_server_their_route(path, method, query):
    assert _route_after(path, method, query) == path


@pytest.mark.parametrize("path", ["/nope", "/api/status/123", "/users/42"])
def test_unknown_paths_set_no_route(path):
    assert _route_after(path) is None

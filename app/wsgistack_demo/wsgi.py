"""The demo WSGI application (PEP 3333, stdlib only): ``wsgistack_demo.wsgi:application``.

Endpoints, for exercising every hop of the stack:

    GET  /                            200 text/plain "Hello from the WSGI stack!\\n"
    GET  /healthz                     liveness, the process answers: {"status": "ok"}
    GET  /readyz                      readiness: {"status": "ready"}, or 503
                                      {"status": "unready", ...} while the simulated
                                      dependency is down (DEPENDENCY_DOWN_FILE exists)
    ANY  /api/echo                    the request as the app saw it: method, path, query,
                                      args, headers, remote_addr, scheme, server_protocol,
                                      body_size, hostname, pid; with an X-Powered-By
                                      header, which a proxy in front should not pass on;
                                      ?cache_control=V sends Cache-Control: V (letters,
                                      digits, spaces and , = - only), e.g. no-transform,
                                      which nginx's compression honours
    GET  /api/work?ms=N               N ms (0..10000) of CPU-bound SHA-256 hashing:
                                      {"ms": N, "iterations": k}
    GET  /api/sleep?ms=N              sleeps N ms (0..60000): {"ms": N}
    GET  /api/stream?chunks=N&size=B  N chunks (1..10000, default 10) of B bytes (1..65536,
                                      default 1024), streamed without Content-Length; each
                                      chunk starts "chunk 0007" and ends with "\\n"
    POST /api/upload                  reads the body in 64 KiB pieces:
                                      {"bytes": n, "sha256": hexdigest}
    GET  /api/status?code=N           answers status N (200..599; 204 and 304 without a
                                      body), otherwise {"status": N}

While SLOWDOWN_FILE exists, every request but the two probes first waits the
milliseconds it holds (0..60000; looked at once a second per process): a
slower release, rehearsed without a rebuild (the load gate's test, docs/ci/).

Each matched request tells the server its route (the metrics' bounded
``http_route`` label) through ``environ["wsgistack.http_route"]``: here the
path itself, since every route is a fixed path; an app with path parameters
sets the template (``/users/<int:id>``), never the raw path. Unknown paths set
nothing and are counted under one value.

GET endpoints also answer HEAD. Every answer is JSON unless stated, with a
Content-Length except the stream. Bad parameters answer 400 {"error": ...},
unknown paths 404 {"error": "not found", "path": ...}, wrong methods 405 with
an Allow header. Exceptions propagate to the server (500).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

READ_SIZE = 64 * 1024  # bytes per wsgi.input read
ROUTE_ENVIRON_KEY = "wsgistack.http_route"  # read by the server after the response (metrics)
GREETING = b"Hello from the WSGI stack!\n"
HOSTNAME = socket.gethostname()
# The demo app's stand-in for a dependency (a database, a cache): it is "down",
# and /readyz answers 503, while this file exists, so an outage can be
# rehearsed by touching it in one replica. Environment: DEPENDENCY_DOWN_FILE.
DEPENDENCY_DOWN_FILE = os.environ.get("DEPENDENCY_DOWN_FILE", "/tmp/dependency-down")
# The demo app's stand-in for a regression: while this file exists, requests wait the
# milliseconds it holds. Environment: SLOWDOWN_FILE.
SLOWDOWN_FILE = os.environ.get("SLOWDOWN_FILE", "/tmp/slowdown-ms")
SLOWDOWN_CHECK_INTERVAL = 1.0  # seconds between looks at SLOWDOWN_FILE, per process
PROBES = frozenset({"/healthz", "/readyz"})
GET = frozenset({"GET", "HEAD"})
_INTEGER = re.compile(r"-?[0-9]+")
# What /api/echo?cache_control= may send: directives, never a line break.
_CACHE_CONTROL = re.compile(r"[A-Za-z0-9 ,=-]+")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Handler = Callable[[Environ, StartResponse], Iterable[bytes]]


class BadRequest(Exception):
    """A query parameter is missing, not an integer or out of range; the message names it."""


def _status(code: int) -> str:
    """The PEP 3333 status line for ``code``, e.g. "404 Not Found"."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Status {code}"


def _text(wsgi_str: str) -> str:
    """Decode a PEP 3333 "bytes-as-latin-1" string (PATH_INFO) as UTF-8."""
    return wsgi_str.encode("latin-1").decode("utf-8", "replace")


def _json(
    start_response: StartResponse,
    code: int,
    payload: object,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """Start a ``code`` response with ``payload`` as an application/json body."""
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    start_response(
        _status(code),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _int_param(environ: Environ, name: str, default: int | None, low: int, high: int) -> int:
    """The query parameter ``name`` as an int in [low, high]; raises BadRequest."""
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    if not values:
        if default is None:
            raise BadRequest(f"parameter {name!r} is required")
        return default
    raw = values[0]
    try:
        if not _INTEGER.fullmatch(raw):
            raise ValueError(raw)
        value = int(raw)
    except ValueError:  # also int()'s limit on digits
        raise BadRequest(f"parameter {name!r} must be an integer, got {raw[:20]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"parameter {name!r} must be between {low} and {high}, got {value}")
    return value


def _read_body(environ: Environ, consume: Callable[[bytes], object]) -> int:
    """Read the request body in READ_SIZE pieces, passing each to ``consume``.

    Reads to EOF when the server promises a terminated stream
    (``wsgi.input_terminated``), else at most CONTENT_LENGTH bytes, as PEP 3333
    requires. Returns the number of bytes read.
    """
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        remaining = None
    else:
        length = environ.get("CONTENT_LENGTH", "")
        remaining = int(length) if length.isdigit() else 0
    total = 0
    while remaining is None or remaining > 0:
        size = READ_SIZE if remaining is None else min(READ_SIZE, remaining)
        chunk = stream.read(size)
        if not chunk:
            break
        consume(chunk)
        total += len(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return total


def index(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/``: the greeting, text/plain."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(GREETING)))],
    )
    return [GREETING]


def healthz(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/healthz``: liveness, {"status": "ok"}."""
    return _json(start_response, 200, {"status": "ok"})


def readyz(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/readyz``: readiness, {"status": "ready"}; 503 while the dependency is down."""
    if os.path.exists(DEPENDENCY_DOWN_FILE):
        return _json(start_response, 503, {"status": "unready", "reason": "dependency down"})
    return _json(start_response, 200, {"status": "ready"})


def echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/echo``: the request as the app saw it; reads and counts the body."""
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    query = environ.get("QUERY_STRING", "")
    extra = [("X-Powered-By", "wsgistack-demo")]
    cache_control = parse_qs(query).get("cache_control", [""])[-1]
    if _CACHE_CONTROL.fullmatch(cache_control):
        extra.append(("Cache-Control", cache_control))
    return _json(
        start_response,
        200,
        {
            "method": environ["REQUEST_METHOD"],
            "path": _text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")),
            "query": query,
            "args": parse_qs(query),
            "headers": headers,
            "remote_addr": environ.get("REMOTE_ADDR", ""),
            "scheme": environ["wsgi.url_scheme"],
            "server_protocol": environ.get("SERVER_PROTOCOL", ""),
            "body_size": _read_body(environ, lambda chunk: None),
            "hostname": HOSTNAME,
            "pid": os.getpid(),
        },
        extra,
    )


def work(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/work?ms=N``: hash with SHA-256 for N ms of wall time, holding the GIL."""
    ms = _int_param(environ, "ms", None, 0, 10_000)
    deadline = time.perf_counter() + ms / 1000
    digest, iterations = b"\0" * 32, 0
    while time.perf_counter() < deadline:
        digest = hashlib.sha256(digest * 32).digest()  # 1 KiB: below hashlib's GIL release
        iterations += 1
    return _json(start_response, 200, {"ms": ms, "iterations": iterations})


def sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/sleep?ms=N``: wait N ms without using the CPU."""
    ms = _int_param(environ, "ms", None, 0, 60_000)
    time.sleep(ms / 1000)
    return _json(start_response, 200, {"ms": ms})


def stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/stream?chunks=N&size=B``: N chunks of exactly B bytes, no Content-Length.

    Chunk i is "chunk {i:04d}" padded with "." and ending in "\\n", cut to B
    bytes when B is shorter than that (chunks are told apart from B = 11 up).
    """
    chunks = _int_param(environ, "chunks", 10, 1, 10_000)
    size = _int_param(environ, "size", 1024, 1, 65_536)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

    def generate() -> Iterator[bytes]:
        for number in range(chunks):
            label = f"chunk {number:04d}".encode()
            yield (label + b"." * (size - len(label) - 1))[: size - 1] + b"\n"

    return generate()


def upload(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/upload``: the body's length in bytes and SHA-256, read in 64 KiB pieces."""
    digest = hashlib.sha256()
    size = _read_body(environ, digest.update)
    return _json(start_response, 200, {"bytes": size, "sha256": digest.hexdigest()})


def status(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/api/status?code=N``: answer with status N (200..599), on purpose."""
    code = _int_param(environ, "code", None, 200, 599)
    if code in (204, 304):  # no body allowed (RFC 9110 §15.3.5, §15.4.5)
        start_response(_status(code), [])
        return []
    return _json(start_response, code, {"status": code})


# path -> (allowed methods, None for any; handler)
ROUTES: dict[str, tuple[frozenset[str] | None, Handler]] = {
    "/": (GET, index),
    "/healthz": (GET, healthz),
    "/readyz": (GET, readyz),
    "/api/echo": (None, echo),
    "/api/work": (GET, work),
    "/api/sleep": (GET, sleep),
    "/api/stream": (GET, stream),
    "/api/upload": (frozenset({"POST"}), upload),
    "/api/status": (GET, status),
}


_slowdown = {"checked": -1e9, "seconds": 0.0}  # the last look at SLOWDOWN_FILE


def slowdown_seconds() -> float:
    """The wait SLOWDOWN_FILE asks for, in seconds (0 without the file, or with anything
    but an integer 0..60000 in it); the file is read at most once a second."""
    now = time.monotonic()
    if now - _slowdown["checked"] >= SLOWDOWN_CHECK_INTERVAL:
        _slowdown["checked"] = now
        try:
            with open(SLOWDOWN_FILE) as handle:
                text = handle.read(16).strip()
        except OSError:
            text = ""
        ms = int(text) if _INTEGER.fullmatch(text) else 0
        _slowdown["seconds"] = ms / 1000 if 0 <= ms <= 60000 else 0.0
    return _slowdown["seconds"]


def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The PEP 3333 application: route PATH_INFO and REQUEST_METHOD to a handler."""
    path = environ.get("PATH_INFO", "") or "/"
    if path not in PROBES and (delay := slowdown_seconds()):
        time.sleep(delay)
    route = ROUTES.get(path)
    if route is None:
        return _json(start_response, 404, {"error": "not found", "path": _text(path)})
    environ[ROUTE_ENVIRON_KEY] = path  # a ROUTES key: one of a fixed set
    methods, handler = route
    if methods is not None and environ["REQUEST_METHOD"] not in methods:
        return _json(
            start_response,
            405,
            {"error": f"method {environ['REQUEST_METHOD']} not allowed"},
            [("Allow", ", ".join(sorted(methods)))],
        )
    try:
        return handler(environ, start_response)
    except BadRequest as exc:
        return _json(start_response, 400, {"error": str(exc)})

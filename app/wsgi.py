"""The demo WSGI application (PEP 3333, no framework): ``app.wsgi:application``.

Endpoints, for exercising every hop of the stack:

    GET  /                          text greeting
    GET  /healthz                   liveness: the process answers
    GET  /readyz                    readiness: the app is imported and serving
    ANY  /api/echo                  the request as the app saw it (JSON)
    GET  /api/work?ms=N             N ms of CPU-bound work (0..10000)
    GET  /api/sleep?ms=N            waits N ms, I/O-bound (0..60000)
    GET  /api/stream?chunks=N&size=B  N chunks of B bytes, no Content-Length
    POST /api/upload                reads the body in pieces: {"bytes", "sha256"}
    GET  /api/status?code=N         answers status N (test endpoint for 4xx/5xx)

Bad parameters answer 400, unknown paths 404, wrong methods 405 (all JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import parse_qs

READ_SIZE = 64 * 1024  # bytes per wsgi.input read
GREETING = b"Hello from the WSGI stack!\n"
HOSTNAME = socket.gethostname()

StartResponse = Callable[..., object]


class BadRequest(Exception):
    """A parameter is missing or out of range; the message names it."""


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Status {code}"


def _json(
    start_response: StartResponse,
    code: int,
    payload: object,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    start_response(
        _status(code),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _int_param(environ: dict, name: str, default: int | None, low: int, high: int) -> int:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    if not values:
        if default is None:
            raise BadRequest(f"parameter {name!r} is required")
        return default
    try:
        value = int(values[0])
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be an integer, got {values[0]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"parameter {name!r} must be between {low} and {high}, got {value}")
    return value


def _read_body(environ: dict, consume: Callable[[bytes], None]) -> int:
    """Read wsgi.input to its end in READ_SIZE pieces; returns the byte count."""
    stream = environ["wsgi.input"]
    total = 0
    while chunk := stream.read(READ_SIZE):
        consume(chunk)
        total += len(chunk)
    return total


def index(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(GREETING)))],
    )
    return [GREETING]


def healthz(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    return _json(start_response, 200, {"status": "ok"})


def readyz(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    return _json(start_response, 200, {"status": "ready"})


def echo(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    query = environ.get("QUERY_STRING", "")
    return _json(
        start_response,
        200,
        {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
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
    )


def work(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    ms = _int_param(environ, "ms", None, 0, 10_000)
    deadline = time.perf_counter() + ms / 1000
    digest, iterations = b"\0" * 32, 0
    while time.perf_counter() < deadline:
        digest = hashlib.sha256(digest * 32).digest()
        iterations += 1
    return _json(start_response, 200, {"ms": ms, "iterations": iterations})


def sleep(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    ms = _int_param(environ, "ms", None, 0, 60_000)
    time.sleep(ms / 1000)
    return _json(start_response, 200, {"ms": ms})


def stream(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    chunks = _int_param(environ, "chunks", 10, 1, 10_000)
    size = _int_param(environ, "size", 1024, 16, 65_536)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

    def generate() -> Iterable[bytes]:
        for number in range(chunks):
            line = f"chunk {number:06d}\n".encode()
            yield line + b"." * (size - len(line) - 1) + b"\n"

    return generate()


def upload(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    digest = hashlib.sha256()
    size = _read_body(environ, digest.update)
    return _json(start_response, 200, {"bytes": size, "sha256": digest.hexdigest()})


def status(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    code = _int_param(environ, "code", None, 200, 599)
    if code in (204, 304):
        start_response(_status(code), [])
        return []
    return _json(start_response, code, {"status": code})


# path -> (allowed methods or None for any, handler)
ROUTES: dict[str, tuple[frozenset[str] | None, Callable]] = {
    "/": (frozenset({"GET", "HEAD"}), index),
    "/healthz": (frozenset({"GET", "HEAD"}), healthz),
    "/readyz": (frozenset({"GET", "HEAD"}), readyz),
    "/api/echo": (None, echo),
    "/api/work": (frozenset({"GET"}), work),
    "/api/sleep": (frozenset({"GET"}), sleep),
    "/api/stream": (frozenset({"GET"}), stream),
    "/api/upload": (frozenset({"POST", "PUT"}), upload),
    "/api/status": (frozenset({"GET", "POST"}), status),
}


def application(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    """PEP 3333 entry point."""
    path = environ.get("PATH_INFO", "") or "/"
    route = ROUTES.get(path)
    if route is None:
        return _json(start_response, 404, {"error": "not found", "path": path})
    methods, handler = route
    if methods is not None and environ["REQUEST_METHOD"] not in methods:
        return _json(
            start_response,
            405,
            {"error": "method not allowed"},
            [("Allow", ", ".join(sorted(methods)))],
        )
    try:
        return handler(environ, start_response)
    except BadRequest as exc:
        return _json(start_response, 400, {"error": str(exc)})

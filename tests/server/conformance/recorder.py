"""The conformance suite's WSGI app: it answers with what it saw, as JSON.

Served by a real ``python -m wsgistack`` (RECORDER in this package's
``__init__``: ``tests.server.conformance.recorder:application``, imported from
the repository root), wrapped in ``wsgiref.validate.validator`` with its
warnings turned into errors: any PEP 3333 violation by the server shows up as
an ``AssertionError`` or ``WSGIWarning`` in the server's error log, which the
fixtures check after every server stops.

Routes (by PATH_INFO; query parameters as noted):

    /echo?read=MODE   the environ (every str value, plus the wsgi.* facts) and
                      the body read with MODE: all (read(n) loop, default),
                      once (one read(n)), line, lines, iter, none
    /sleep?s=S        sleeps S seconds, answers its pid
    /hold?dir=D&name=N  creates D/started-N, waits (at most 15 s) for D/release
    /stream?n=N       N chunks "chunk i\\n", no Content-Length
    /write            two pieces through write(), then one from the iterable
    /status?code=N    answers status N (no Content-Type for 204/304)
    /error            raises before start_response (500)
    /error-late       raises after the first body chunk was sent
    /exc-info         start_response, then start_response again with exc_info
    /close?dir=D      an iterable that streams slowly and records close() in D/closed
    /pid              the worker's pid, and the pid that imported this module
    /grow?mb=N        keeps N MiB more allocated in this worker (--max-worker-memory)
    /hang             ignores SIGABRT and sleeps (--timeout must SIGKILL it)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

IMPORTED_BY = os.getpid()  # the master's pid with --preload
READ_SIZE = 1000  # odd on purpose: reads straddle the chunks of a chunked body


def _query(environ: dict) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _read_body(environ: dict, mode: str) -> bytes:
    stream = environ["wsgi.input"]
    if mode == "none":
        return b""
    if mode == "once":
        return stream.read(READ_SIZE)
    if mode == "line":
        parts = []
        while line := stream.readline():
            parts.append(line)
        return b"".join(parts)
    if mode == "lines":
        return b"".join(stream.readlines())
    if mode == "iter":
        return b"".join(stream)
    parts = []
    while data := stream.read(READ_SIZE):
        parts.append(data)
    return b"".join(parts)


def _json(start_response, payload: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def echo(environ: dict, start_response) -> list[bytes]:
    body = _read_body(environ, _query(environ).get("read", "all"))
    seen = {k: v for k, v in environ.items() if type(v) is str}
    facts = {
        "wsgi.version": list(environ["wsgi.version"]),
        "wsgi.url_scheme": environ["wsgi.url_scheme"],
        "wsgi.multithread": environ["wsgi.multithread"],
        "wsgi.multiprocess": environ["wsgi.multiprocess"],
        "wsgi.run_once": environ["wsgi.run_once"],
        "wsgi.input_terminated": environ.get("wsgi.input_terminated"),
        "wsgi.file_wrapper": "wsgi.file_wrapper" in environ,
        "types": sorted({type(v).__name__ for k, v in environ.items() if "." not in k}),
    }
    # one more read at the end of the body must return b"" at once
    after = environ["wsgi.input"].read(READ_SIZE) if body or environ.get("CONTENT_LENGTH") else b""
    return _json(
        start_response,
        {"environ": seen, "wsgi": facts, "body": body.decode("latin-1"), "after": after.decode()},
    )


def sleep(environ: dict, start_response) -> list[bytes]:
    time.sleep(float(_query(environ).get("s", "0.5")))
    return _json(start_response, {"pid": os.getpid(), "thread": threading.get_ident()})


def hold(environ: dict, start_response) -> list[bytes]:
    query = _query(environ)
    folder = query["dir"]
    with open(os.path.join(folder, f"started-{query['name']}"), "w") as marker:
        marker.write(str(os.getpid()))
    deadline = time.monotonic() + 15
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _json(start_response, {"pid": os.getpid()})


def stream(environ: dict, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(int(_query(environ).get("n", "3"))):
        yield f"chunk {i}\n".encode()


def write(environ: dict, start_response) -> list[bytes]:
    out = start_response("200 OK", [("Content-Type", "text/plain")])
    out(b"written 1\n")
    out(b"written 2\n")
    return [b"returned\n"]


def status(environ: dict, start_response) -> list[bytes]:
    code = int(_query(environ).get("code", "200"))
    if code in (204, 304):
        start_response(f"{code} X", [])
        return [b""]
    body = f"status {code}\n".encode()
    start_response(f"{code} X", [("Content-Type", "text/plain")])
    return [body]


def error(environ: dict, start_response) -> list[bytes]:
    raise RuntimeError("the recorder fails on purpose")


def error_late(environ: dict, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    raise RuntimeError("the recorder fails on purpose, mid-body")


def exc_info(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replaced before any body byte")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced\n"]


class _Slow:
    """Streams one chunk every 50 ms (at most 200) and records close()."""

    def __init__(self, start_response, folder: str) -> None:
        start_response("200 OK", [("Content-Type", "text/plain")])
        self.folder = folder
        self.sent = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self.sent >= 200:
            raise StopIteration
        self.sent += 1
        time.sleep(0.05)
        return b"x" * 65536

    def close(self) -> None:
        with open(os.path.join(self.folder, "closed"), "w") as marker:
            marker.write(str(self.sent))


def close(environ: dict, start_response):
    return _Slow(start_response, _query(environ)["dir"])


def pid(environ: dict, start_response) -> list[bytes]:
    return _json(start_response, {"pid": os.getpid(), "imported_by": IMPORTED_BY})


_BALLAST: list[bytearray] = []


def grow(environ: dict, start_response) -> list[bytes]:
    size = int(_query(environ)["mb"]) * 1024 * 1024
    _BALLAST.append(bytearray(b"\1" * size))  # written, so resident
    return _json(start_response, {"pid": os.getpid()})


def hang(environ: dict, start_response) -> list[bytes]:
    signal.signal(signal.SIGABRT, signal.SIG_IGN)  # only in the main thread: --threads 1
    time.sleep(60)
    return _json(start_response, {"pid": os.getpid()})


ROUTES = {
    "/echo": echo,
    "/sleep": sleep,
    "/hold": hold,
    "/stream": stream,
    "/write": write,
    "/status": status,
    "/error": error,
    "/error-late": error_late,
    "/exc-info": exc_info,
    "/close": close,
    "/pid": pid,
    "/grow": grow,
    "/hang": hang,
}


def _route(environ: dict, start_response):
    return ROUTES.get(environ["PATH_INFO"], echo)(environ, start_response)


application = validator(_route)

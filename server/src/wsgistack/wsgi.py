"""PEP 3333 glue: the environ, start_response, wsgi.input and the file wrapper,
and the loop that runs one request through the application and writes the
response with the right HTTP/1.1 framing (RFC 9112 §6, §7).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, cast
from urllib.parse import unquote_to_bytes

from ._types import ROUTE_ENVIRON_KEY, Environ, WSGIApp
from .config import parse_app_spec
from .http.connection import ClientDisconnected, Connection, Stalled
from .http.parser import HttpError, Request
from .http.response import Response, SendableFile, error_response, reason_phrase
from .logs import printable

log = logging.getLogger("wsgistack.error")

READ_SIZE = 64 * 1024
# What WSGIHandler.handle returns: whether the connection may serve another request;
# or, for a response stalled in the event loop's thread, the rest of the work for a
# thread that may wait for the client (its call returns the same).
Handled = bool | Callable[[], "Handled"]


class Input:
    """``wsgi.input``: the request body, never read past the message end.

    Reads come from what the parser has already received and, when that is
    used up, from the socket (blocking). The first read that has to wait for
    the socket answers ``Expect: 100-continue`` (RFC 9110 §10.1.1). Raises
    HttpError (413, 400) when the body breaks a limit or its framing,
    ClientDisconnected when the client goes away mid-body.
    """

    __slots__ = ("_conn", "_request", "_send_continue")

    def __init__(
        self, conn: Connection, request: Request, send_continue: Callable[[], None]
    ) -> None:
        self._conn = conn
        self._request = request
        self._send_continue = send_continue

    def _fill(self) -> bool:
        """Receive more body; False at the end of the body."""
        request = self._request
        if request.complete:
            return False
        error = self._conn.parser.error
        if error is not None:
            raise error
        if request.expect_continue:
            self._send_continue()
        self._conn.receive()
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of body (all of it for -1 or None); b"" at its end."""
        request = self._request  # its body: a new Body once the first bytes arrive
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(request.body)
        while len(request.body) < size and self._fill():
            pass
        return request.body.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line with its b"\\n" (at most ``size`` bytes); b"" at the body's end."""
        request = self._request
        limit = None if size is None or size < 0 else size
        start = 0
        while True:
            end = request.body.find_newline(start)
            if end >= 0:
                n = end + 1
                break
            if limit is not None and len(request.body) >= limit:
                n = limit
                break
            start = len(request.body)
            if not self._fill():
                n = len(request.body)
                break
        if limit is not None:
            n = min(n, limit)
        return request.body.read(n)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stops after the line that reaches ``hint`` bytes (> 0)."""
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ErrorStream:
    """``wsgi.errors``: text written here goes to the error log."""

    def write(self, text: str) -> int:
        """Log ``text`` (trailing newlines dropped) at ERROR; returns the length logged."""
        text = text.rstrip("\n")
        if text:
            log.error("%s", text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """``write`` each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing to do: every write is logged at once."""


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333: optional platform-specific file handling).

    ``filelike`` has ``read(size)`` (bytes); its ``close()`` is the wrapper's,
    and with ``fileno()`` and ``tell()`` on a regular file the server sends it
    with sendfile(2) from the current offset. Else it is iterated in blocks of
    ``blksize`` bytes.
    """

    # Any: PEP 3333 asks only for read(); close, fileno and tell are looked up when used.
    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def sendfile_span(self) -> tuple[SendableFile, int, int] | None:
        """(file, offset, count) in bytes when the file can go through sendfile(2), else None."""
        try:
            fd = self.filelike.fileno()
            stat = os.fstat(fd)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not (stat.st_mode & 0o170000 == 0o100000):  # S_ISREG
            return None
        return self.filelike, offset, max(stat.st_size - offset, 0)


class _TrustedPeers:
    def __init__(self, allow: list[str]) -> None:
        self.any = "*" in allow
        self.networks = [ipaddress.ip_network(a, strict=False) for a in allow if a != "*"]
        self._cache: dict[str, bool] = {}

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        known = self._cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = host == ""  # a Unix-socket peer is on this machine
            else:
                known = any(address in network for network in self.networks)
            if len(self._cache) < 4096:
                self._cache[host] = known
        return known


# Header field name as received -> its environ key ("" for names with "_", which are
# dropped). Bounded: a client sending ever new names only fills it up.
_ENVIRON_KEYS: dict[str, str] = {}
_ENVIRON_KEYS_MAX = 1024


def _environ_key(name: str) -> str:
    """The PEP 3333 environ key of header field ``name`` (HTTP_*, CONTENT_TYPE,
    CONTENT_LENGTH), or "" when the name has an underscore."""
    if "_" in name:
        key = ""
    else:
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


class WSGIHandler:
    """Runs requests through one WSGI application (PEP 3333) for one worker.

    ``observe(request, response, environ, seconds)`` is called after every
    request (metrics and the access log). ``draining()`` is True once the
    worker is stopping: responses whose head is not yet sent then say
    Connection: close.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        multithread: bool,
        forwarded_allow_ips: list[str],
        url_scheme: str = "http",
        script_name: str = "",
        observe: Callable[[Request, Response, Environ, float], None],
        draining: Callable[[], bool] = lambda: False,
        health_path: str | None = None,
    ) -> None:
        self.app = app
        # the raw request path answered before the app (--health-path), or None
        self.health_path = health_path.encode("latin-1") if health_path else None
        self.draining = draining
        self.script_name = script_name
        self.trusted = _TrustedPeers(forwarded_allow_ips)
        self.observe = observe
        self.base_environ: Environ = {
            "wsgi.version": (1, 0),
            "wsgi.errors": ErrorStream(),
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.url_scheme": url_scheme,
            "SCRIPT_NAME": script_name,
            "SERVER_SOFTWARE": "wsgistack",
        }

    def environ(self, conn: Connection, request: Request, response: Response) -> Environ:
        """The PEP 3333 environ of ``request``; values are latin-1 native strings."""
        raw_path = request.path
        path = (unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path).decode("latin-1")
        prefix = self.script_name
        script_name = prefix
        if prefix:  # PEP 3333: SCRIPT_NAME + PATH_INFO is always the request's path
            if path == prefix or path.startswith(prefix + "/"):
                path = path[len(prefix) :]
            else:
                script_name = ""  # outside the mount point (a health check, say)
        cached = conn.environ_base
        if cached is None:
            peer = conn.peer
            cached = conn.environ_base = (
                {
                    **self.base_environ,
                    "SERVER_NAME": conn.local[0],
                    "SERVER_PORT": str(conn.local[1]),
                    "REMOTE_ADDR": peer[0],
                    "REMOTE_PORT": str(peer[1]),
                },
                peer[0] in self.trusted,
            )
        base, trusted = cached
        env = base.copy()  # a connection's requests share no mutable state: the app may edit it
        env["SCRIPT_NAME"] = script_name
        env["REQUEST_METHOD"] = request.method
        env["PATH_INFO"] = path
        env["QUERY_STRING"] = request.query.decode("latin-1")
        env["RAW_URI"] = request.target.decode("latin-1")
        env["SERVER_PROTOCOL"] = "HTTP/" + request.http_version
        env["wsgi.input"] = Input(conn, request, response.send_continue)
        keys = _ENVIRON_KEYS
        for name, value in request.headers:
            key = keys.get(name)
            if key is None:
                key = _environ_key(name)
            if not key:
                continue  # X_Forwarded_For must not pass as X-Forwarded-For (gunicorn drops too)
            if key in env and key[0] == "H":  # a repeated field: one comma-separated value
                env[key] = f"{env[key]},{value}"
            else:
                env[key] = value
        if request.authority:  # an absolute-form target: its authority wins (RFC 9112 §3.2.2)
            env["HTTP_HOST"] = request.authority
        if request.chunked:
            env.pop("HTTP_TRANSFER_ENCODING", None)  # the server decoded it; body ends at EOF
        if trusted:
            forwarded_for = env.get("HTTP_X_FORWARDED_FOR")
            if forwarded_for:
                # The rightmost entry is the address our trusted peer itself saw;
                # empty list elements are skipped (RFC 9110 §5.6.1).
                last = forwarded_for.rsplit(",", 1)[-1].strip()
                if not last:  # "1.1.1.1," (rare): the last non-empty element
                    entries = [e for e in (e.strip() for e in forwarded_for.split(",")) if e]
                    last = entries[-1] if entries else ""
                if last:
                    env["REMOTE_ADDR"] = last
            proto = env.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
            if proto in ("http", "https"):
                env["wsgi.url_scheme"] = proto
        return env

    def handle(self, conn: Connection, request: Request, keep_alive: bool) -> Handled:
        """Serve ``request`` on ``conn``; True if the connection may serve another.

        ``keep_alive`` False forces ``Connection: close`` (shutdown, disabled
        keep-alive). Never raises for the application's or the client's faults.
        On a connection served in the event loop's thread (``conn.offload``),
        a response the client does not take at once stops there: the return
        value is then a callable that sends the rest, waiting for the client,
        in another thread, and returns what ``handle`` would have.
        """
        started = time.perf_counter()
        response = Response(conn, request, keep_alive and request.keep_alive, self.draining)
        environ = self.environ(conn, request, response)
        if request.path == b"*":  # OPTIONS * asks about the server (RFC 9110 §9.3.7)
            return self._answer_itself(conn, request, response, environ, started, b"")
        if request.path == self.health_path and request.method in ("GET", "HEAD"):
            environ[ROUTE_ENVIRON_KEY] = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
            return self._answer_itself(conn, request, response, environ, started, b"ok\n")
        return self._respond(conn, request, response, environ, started, None)

    def _respond(
        self,
        conn: Connection,
        request: Request,
        response: Response,
        environ: Environ,
        started: float,
        resumed: tuple[Iterable[bytes], Iterator[bytes], str] | None,
    ) -> Handled:
        """Call the app and send its response; or, ``resumed`` after a Stalled send
        with (the app's iterable, the rest of its items, the phase: "file", "body" or
        "finished"), send what was left and go on from there."""
        stalled = False
        result: Iterable[bytes] = ()  # no close(): nothing to close if the app raised
        items: Iterator[bytes] = iter(())
        phase = "body"
        try:
            if resumed is None:
                result = self.app(environ, response.start_response)
                conn.inline = conn.offload  # from here the server sends, not the app
                if isinstance(result, FileWrapper) and not response.headers_sent:
                    phase = "file"
                    if conn.inline:  # sendfile(2) waits for the client: off the loop
                        raise Stalled
                elif isinstance(result, (list, tuple)) and not response.headers_sent:
                    body = b"".join(result) if len(result) != 1 else result[0]
                    response.write(body, known_length=len(body) if type(body) is bytes else None)
                else:
                    items = iter(result)
            else:
                result, items, phase = resumed
                conn.send_unsent()
            if phase == "file":
                phase = "body"
                if not response.send_file(cast(FileWrapper, result)):
                    items = iter(result)
            if phase == "body":
                for data in items:
                    if data or type(data) is not bytes:  # PEP 3333: b"" sends no head yet
                        response.write(data)
                phase = "finished"
                response.finish()
        except Stalled:
            stalled = True
            return partial(
                self._respond, conn, request, response, environ, started, (result, items, phase)
            )
        except HttpError as exc:  # the body broke a limit or its framing (wsgi.input)
            response.keep_alive = False
            response.status_code = exc.status
            if not response.headers_sent:
                conn.sock.sendall(error_response(exc))
        except (ClientDisconnected, OSError) as exc:
            response.keep_alive = False
            if not response.status_code:
                response.status_code = 499  # nginx's "client closed request"
            log.debug("client %s: %s", conn.peer[0], exc)
        except Exception:
            response.keep_alive = False
            target = printable(request.target.decode("latin-1"))  # raw, as gunicorn logs it
            log.exception("error handling %s %s", request.method, target)
            if response.headers_sent and not response.chunked and not response.no_body:
                # a body delimited by the close: a FIN would make it look complete
                conn.aborted = response.content_length is None
            if not response.headers_sent:
                response.status_code = 500
                self._send_quietly(conn, error_response(HttpError(500, reason_phrase(500))))
        finally:
            conn.inline = False
            if not stalled and hasattr(result, "close"):
                try:
                    result.close()  # PEP 3333: always, also on errors and disconnects
                except Exception:
                    log.exception("error in close() of the application's iterable")
        if response.keep_alive and not request.complete:
            response.keep_alive = self._drain(conn, request, response)
        self.observe(request, response, environ, time.perf_counter() - started)
        return response.keep_alive

    def _answer_itself(
        self,
        conn: Connection,
        request: Request,
        response: Response,
        environ: Environ,
        started: float,
        body: bytes,
    ) -> bool:
        """Answer 200 with ``body`` without the app: ``OPTIONS *`` (it has no path an
        app could route) and ``--health-path`` (the worker has imported the app)."""
        response.start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Cache-Control", "no-store")] if body else [],
        )
        try:
            response.write(body, known_length=len(body))
            response.finish()
        except OSError:
            response.keep_alive = False
        if response.keep_alive and not request.complete:
            response.keep_alive = self._drain(conn, request, response)
        self.observe(request, response, environ, time.perf_counter() - started)
        return response.keep_alive

    @staticmethod
    def _send_quietly(conn: Connection, data: bytes) -> None:
        try:
            conn.sock.sendall(data)
        except OSError:
            pass

    @staticmethod
    def _drain(conn: Connection, request: Request, response: Response) -> bool:
        """Read and drop the body the app left unread so the next request parses.

        A client that sent Expect: 100-continue and got no 100 may not send
        the body at all: close instead (RFC 9110 §10.1.1).
        """
        if request.expect_continue and not response.continue_sent:
            return False
        try:
            while not request.complete and conn.parser.error is None:
                request.body.clear()
                conn.receive()
        except OSError:  # socket.timeout included
            return False
        request.body.clear()
        return request.complete


def load_app(spec: str) -> WSGIApp:
    """Import ``MODULE:NAME`` (NAME defaults to ``application``), or call the
    application factory of ``MODULE:FACTORY(args)`` with its literal arguments
    (``config.parse_app_spec``; as gunicorn does).

    The current directory is put first on sys.path, like gunicorn. Raises
    ImportError or AttributeError with the original traceback (or whatever the
    module or the factory raises), ValueError for a malformed spec, TypeError
    if the object (the factory's result) is not callable.
    """
    parsed = parse_app_spec(spec)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = __import__(parsed.module, fromlist=["_"])
    app: object = module
    for part in parsed.attribute:
        app = getattr(app, part)
    if parsed.call is not None:
        if not callable(app):
            raise TypeError(f"{spec}: {'.'.join(parsed.attribute)} is not a factory to call")
        args, kwargs = parsed.call
        app = app(*args, **kwargs)
    if not callable(app):
        raise TypeError(f"{spec} is not callable")
    return cast(WSGIApp, app)  # trusted to follow PEP 3333 once callable

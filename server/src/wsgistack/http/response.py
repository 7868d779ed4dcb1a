"""Writing a response: the status line and header section an application
gives (PEP 3333: start_response), checked, then framed for HTTP/1.1
(RFC 9112 §6, §7: Content-Length, chunked, or close-delimited), with the
``Date`` and ``Server`` fields the server sets (RFC 9110 §6.6), and the
server's own error responses.

No import of ``wsgistack.wsgi``: the file wrapper is read through the small
``SendfileSource`` protocol.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol

from .. import SERVER_SOFTWARE
from .._types import ExcInfo, Headers
from .connection import SEND_SLICE, Connection
from .parser import HttpError, Request

log = logging.getLogger("wsgistack.error")


class SendableFile(Protocol):
    """A binary file ``socket.sendfile`` accepts: ``read(size)`` and ``seek(offset)``
    (its fallback when sendfile(2) cannot be used) and ``fileno()``."""

    def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the file."""

    def seek(self, offset: int, /) -> object:
        """Move to byte ``offset``."""

    def fileno(self) -> int:
        """The file descriptor."""


class SendfileSource(Protocol):
    """What ``Response.send_file`` needs of a file wrapper (PEP 3333: wsgi.file_wrapper)."""

    def sendfile_span(self) -> tuple[SendableFile, int, int] | None:
        """(file, offset in bytes, count in bytes) if sendfile(2) can send it, else None."""


# RFC 9110 §5.6.2 token (a field-value must not hold CR, LF or NUL, RFC 9110 §5.5).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A final status (PEP 3333 "200 OK"): 2xx-5xx, a reason phrase of HTAB, SP,
# VCHAR and obs-text (RFC 9112 §4); 1xx are interim, not the app's to send.
_STATUS = re.compile(r"[2-5][0-9][0-9] [\t\x20-\x7e\x80-\xff]*")
# What a field value must not hold (RFC 9110 §5.5): controls other than HTAB,
# DEL, and anything beyond latin-1 (the head is latin-1 on the wire, PEP 3333).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
# PEP 3333: "the application must not send hop-by-hop headers".
_HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)


# What start_response does with a response header field, by its name.
_FIELD, _CONTENT_LENGTH, _SERVER_SET, _HOP = 0, 1, 2, 3
# Response header names the application used that are tokens -> what to do with them.
# Bounded: an application making up ever new names only fills it up.
_RESPONSE_NAMES: dict[str, int] = {}
_RESPONSE_NAMES_MAX = 1024
# Status strings the application used that are valid -> their status code (bounded too).
_STATUS_CODES: dict[str, int] = {}


def _response_name(name: str) -> int:
    """What to do with a field named ``name``; ValueError unless it is a token
    (RFC 9110 §5.6.2)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"bad header name {name!r}")
    lowered = name.lower()
    if lowered in _HOP_BY_HOP:
        kind = _HOP
    elif lowered == "content-length":
        kind = _CONTENT_LENGTH
    elif lowered in ("date", "server"):
        kind = _SERVER_SET
    else:
        kind = _FIELD
    if len(_RESPONSE_NAMES) < _RESPONSE_NAMES_MAX:
        _RESPONSE_NAMES[name] = kind
    return kind


_OVERRIDES_LOGGED: set[str] = set()


def _overridden(name: str, why: str) -> None:
    """Say once per process and field name that the app's field was replaced."""
    lowered = name.lower()
    if lowered not in _OVERRIDES_LOGGED:
        _OVERRIDES_LOGGED.add(lowered)
        log.warning("the application's %s header is not sent: %s", name, why)


def _status_code(status: object) -> int:
    """The code of a PEP 3333 status string like "200 OK"; ValueError if it is none
    (a 1xx, a reason phrase with control characters or beyond latin-1)."""
    if type(status) is not str or not _STATUS.fullmatch(status):
        if type(status) is str and status[:1] == "1":
            raise ValueError(f"bad status {status!r}: 1xx is not a final status")
        raise ValueError(f"bad status {status!r}: want a str like '200 OK'")
    code = int(status[:3])
    if len(_STATUS_CODES) < _RESPONSE_NAMES_MAX:
        _STATUS_CODES[status] = code
    return code


_SERVER_TAIL = b"\r\nServer: " + SERVER_SOFTWARE.encode("latin-1") + b"\r\n\r\n"
# (second, its IMF-fixdate, the head's end: Date and Server fields and the blank line)
_date_cache: tuple[int, bytes, bytes] = (0, b"", b"")


def _date_cache_now() -> tuple[int, bytes, bytes]:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        date = formatdate(now, usegmt=True).encode("ascii")
        _date_cache = (now, date, b"Date: " + date + _SERVER_TAIL)
    return _date_cache


def http_date() -> bytes:
    """The current time as an IMF-fixdate (RFC 9110 §5.6.7), cached per second."""
    return _date_cache_now()[1]


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (RFC 9110 §15), or ''."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def response_head(status_line: str, fields: str) -> bytes:
    """Serialise ``HTTP/1.1 <status_line>``, the header ``fields`` and Date and Server.

    ``status_line`` is e.g. "200 OK" (PEP 3333's status string); ``fields`` is
    the header section so far, "Name: value\\r\\n" per field. Returns the head
    including the blank line, latin-1 encoded (UnicodeEncodeError otherwise).
    """
    return f"HTTP/1.1 {status_line}\r\n{fields}".encode("latin-1") + _date_cache_now()[2]


def error_response(error: HttpError) -> bytes:
    """A complete ``Connection: close`` response for a refused request, as bytes:
    ``error.status`` with its reason phrase, and that as a text/plain body."""
    body = f"{error.status} {reason_phrase(error.status)}\n".encode()
    head = response_head(
        f"{error.status} {reason_phrase(error.status)}",
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n",
    )
    return head + body


def bodiless(method: str, status: int) -> bool:
    """True when the response has no body: HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1)."""
    return method == "HEAD" or status < 200 or status in (204, 304)


class Response:
    """Response state of one request: start_response, write() and framing."""

    __slots__ = (
        "conn",
        "request",
        "keep_alive",
        "draining",
        "status",
        "status_code",
        "fields",
        "headers_sent",
        "continue_sent",
        "content_length",
        "chunked",
        "body_bytes",
        "no_body",
    )

    def __init__(
        self,
        conn: Connection,
        request: Request,
        keep_alive: bool,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self.conn = conn
        self.request = request
        self.keep_alive = keep_alive
        self.draining = draining  # True once the worker is stopping: say Connection: close
        self.status: str | None = None
        self.status_code = 0
        self.fields = ""  # the header section from the app's fields (start_response)
        self.headers_sent = False
        self.continue_sent = False
        self.content_length: int | None = None
        self.chunked = False
        self.body_bytes = 0
        self.no_body = False

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        """PEP 3333: start_response(status, response_headers, exc_info=None) -> write.

        ``status`` is a str like "200 OK"; ``headers`` a list of (name, value) str
        pairs. Nothing is sent yet: the head goes out with the first body bytes
        (``write``) or ``finish``. Hop-by-hop fields are refused, Date and Server
        dropped (the server sets them), Content-Length kept for the framing.
        Raises ValueError for a bad status or header, RuntimeError when called
        again without ``exc_info``; with ``exc_info`` once the head is sent, it
        re-raises that exception.
        """
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        code = _STATUS_CODES.get(status) if type(status) is str else None
        if code is None:
            code = _status_code(status)
        fields = []  # "Name: value\r\n" of each field the head carries as the app gave it
        content_length = None
        for pair in headers:
            if type(pair) is not tuple or len(pair) != 2:
                raise ValueError(f"bad header {pair!r}: want a (name, value) tuple")
            name, value = pair
            if type(name) is not str:
                raise ValueError(f"bad header name {name!r}")
            kind = _RESPONSE_NAMES.get(name)
            if kind is None:
                kind = _response_name(name)
            if type(value) is not str or (
                not (value.isascii() and value.isprintable()) and _BAD_VALUE.search(value)
            ):  # printable ASCII, the usual value, is checked without the regex
                raise ValueError(f"bad value for header {name}: {value!r}")
            if kind == _FIELD:
                fields.append(f"{name}: {value}\r\n")
            elif kind == _HOP:
                raise ValueError(f"hop-by-hop header {name} is the server's, not the app's")
            elif kind == _CONTENT_LENGTH:
                if not value.strip().isdigit():
                    raise ValueError(f"bad Content-Length {value!r}")
                if content_length is not None and int(value) != content_length:
                    _overridden(name, "a second, different Content-Length; the first is sent")
                    continue
                content_length = int(value)  # _head() writes it, once (RFC 9110 §8.6)
            else:  # Date or Server: the server sets these (PEP 3333 lets it)
                _overridden(name, "the server sets it")
        self.status = status
        self.status_code = code
        self.fields = "".join(fields)
        self.content_length = content_length
        return self.write

    def send_continue(self) -> None:
        """Answer Expect: 100-continue once, before any final response (RFC 9110 §10.1.1).

        Raises OSError from the socket.
        """
        if not self.continue_sent and not self.headers_sent:
            self.continue_sent = True
            self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _head(self, known_length: int | None) -> bytes:
        if self.status is None:
            raise RuntimeError("the application sent body data before calling start_response")
        request = self.request
        fields = self.fields
        self.no_body = bodiless(request.method, self.status_code)
        if self.content_length is None and known_length is not None and not self.no_body:
            self.content_length = known_length
        if request.expect_continue and not self.continue_sent and not request.complete:
            # The client may never send the body it asked to send: close after this
            # answer, and say so (RFC 9110 §10.1.1), rather than wait for it.
            self.keep_alive = False
        if self.content_length is not None:
            if not (self.status_code < 200 or self.status_code == 204):
                fields += f"Content-Length: {self.content_length}\r\n"
        elif not self.no_body:
            if request.http_version == "1.1":
                self.chunked = True
                fields += "Transfer-Encoding: chunked\r\n"
            else:
                self.keep_alive = False  # the end of the body is the end of the connection
        if self.keep_alive and self.draining():
            self.keep_alive = False  # the worker began stopping while the app ran
        if not self.keep_alive:
            fields += "Connection: close\r\n"
        elif request.http_version == "1.0":
            fields += "Connection: keep-alive\r\n"
        self.headers_sent = True
        return response_head(self.status, fields)

    def write(self, data: bytes, known_length: int | None = None) -> None:
        """PEP 3333's write() callable, also used for each item of the iterable.

        Sends the head first if it is not sent yet, then ``data`` framed as the
        head says (a chunk, RFC 9112 §7.1; or as is). ``known_length`` (bytes)
        is the whole body's when the caller knows it. Raises TypeError unless
        ``data`` is bytes, RuntimeError before start_response, OSError from the
        socket.
        """
        if type(data) is not bytes:
            raise TypeError(f"the application must send bytes, not {type(data).__name__}")
        out = b"" if self.headers_sent else self._head(known_length)
        if data and not self.no_body:
            if self.content_length is not None:
                room = self.content_length - self.body_bytes
                if len(data) > room:
                    log.error("application sent more than its Content-Length; truncated")
                    data = data[:room]
                    self.keep_alive = False
            self.body_bytes += len(data)
            out += b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data
        if out:
            self.conn.send(out)

    def finish(self) -> None:
        """Send what ends the message: the head if not yet sent, the last chunk
        (RFC 9112 §7.1). Raises OSError from the socket."""
        if not self.headers_sent:
            self.write(b"", known_length=0)
        if self.chunked:
            self.conn.send(b"0\r\n\r\n")
        elif (
            self.content_length is not None
            and self.body_bytes < self.content_length
            and not self.no_body
        ):
            log.error("application sent less than its Content-Length; closing the connection")
            self.keep_alive = False

    def send_file(self, wrapper: SendfileSource) -> bool:
        """Send a regular file with sendfile(2); False if this file can't be
        (nothing sent then). Raises OSError from the socket."""
        span = wrapper.sendfile_span()
        if span is None or self.headers_sent:
            return False
        file, offset, count = span
        if self.content_length is not None:
            count = min(count, self.content_length)
        with self.conn.waiting():
            self._send_file(file, offset, count)
        return True

    def _send_file(self, file: SendableFile, offset: int, count: int) -> None:
        """The head, then ``count`` bytes of ``file`` from ``offset`` by sendfile(2)."""
        sock = self.conn.sock
        sock.sendall(self._head(count))
        if not self.no_body and count:
            # socket.sendfile() waits for the socket with Python's own timeout
            sock.settimeout(self.conn.io_timeout)
            try:
                sent = 0
                while sent < count:  # in slices: each one progress (a slow client's)
                    n = sock.sendfile(file, offset + sent, min(count - sent, 4 * SEND_SLICE))
                    if not n:
                        break  # the file is shorter than it said
                    sent += n
                    self.conn.progress()
                self.body_bytes += sent
            finally:
                sock.settimeout(None)

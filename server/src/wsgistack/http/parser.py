"""HTTP/1.1 message framing (RFC 9112) on top of the httptools (llhttp) parser.

No I/O here: ``RequestParser.feed(bytes)`` turns received bytes into
``Request`` objects, in order, with their bodies; the caller owns the socket.
llhttp already rejects the request-smuggling vectors of RFC 9112 §6.1, §6.3 and
§11.2 (Transfer-Encoding with Content-Length, duplicate or malformed
Content-Length, bare CR or LF, obs-fold, whitespace before the colon, invalid
token and field-value characters, bad chunk sizes); this module adds what
llhttp leaves to the server: the configured limits (414, 431, 413), also on a
head still in flight, Host rules (RFC 9112 §3.2), the HTTP version (505),
HTTP/1.0 with Transfer-Encoding (RFC 9112 §6.1), a final coding other than
chunked (400, RFC 9112 §6.3; llhttp only sees it after our callback), codings
we don't implement before a final chunked (501, RFC 9112 §6.1), and a request
line that is not exactly ``method SP request-target SP HTTP-version CRLF``
(RFC 9112 §3: llhttp skips extra spaces around the target).

Responses are written by ``wsgistack.http.response``.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import NoReturn

import httptools

from .body import NO_BODY, Body


class HttpError(Exception):
    """A request the server refuses: answer ``status`` (an HTTP status code)
    and close the connection; ``detail`` (str) says why, for the log."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """Request limits in bytes or counts; 0 means unlimited (gunicorn's semantics).

    The server's defaults are its settings' (``--limit-request-*``, in
    ``wsgistack.config``).
    """

    request_line: int
    fields: int
    field_size: int
    body: int


@dataclass(slots=True)
class Request:
    """One parsed request: the head, and the body as far as it has arrived.

    ``headers`` keeps the order and case of the wire as latin-1 ``str`` pairs
    (values stripped of surrounding whitespace, RFC 9110 §5.5).
    """

    method: str = ""
    target: bytes = b""
    path: bytes = b""
    query: bytes = b""
    authority: str = ""  # an absolute-form target's host[:port], which wins over Host
    http_version: str = "1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    body: Body = NO_BODY  # received, not yet read by the app (its own from the first byte)
    body_received: int = 0  # bytes of body parsed so far (bytes 'body' has handed out included)
    complete: bool = False  # the whole message, body included, has been parsed

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


# The fields that frame or route the message, found in one pass over the head.
_FRAMING_FIELDS = frozenset(("host", "transfer-encoding", "content-length", "connection", "expect"))
_LIST_FIELDS = frozenset(("transfer-encoding", "connection"))
# Fields defined as one value, not a list: two lines with different values
# cannot be combined (RFC 9110 §5.3), and an app would read either: 400.
_SINGLETONS = frozenset(
    ("content-type", "authorization", "proxy-authorization", "range", "if-modified-since",
     "if-unmodified-since", "max-forwards", "from", "referer", "user-agent", "date")
)  # fmt: skip
# Fields a trailer section must not carry (RFC 9110 §6.5.1: framing, routing,
# request modifiers, authentication, and the content's own): dropped.
_NOT_IN_TRAILERS = frozenset(
    ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
     "trailer", "upgrade", "expect", "content-type", "content-encoding", "content-range",
     "authorization", "proxy-authorization", "cookie", "set-cookie", "range", "max-forwards",
     "cache-control", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
)  # fmt: skip
# Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2): an IP-literal in
# brackets, or a reg-name / IPv4address of unreserved, pct-encoded and sub-delims
# characters; empty when the target has no authority. No userinfo, no spaces.
_VALID_HOSTS: set[str] = set()  # Host values seen valid (a cache of _HOST's answer)
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


# The most bytes a request line may take beyond its request-target: a method (llhttp's
# longest is 13 bytes), the two SPs, "HTTP/1.1" and CRLF. A field line may take 4 beyond
# its name and value: ":", one SP and CRLF.
_REQUEST_LINE_OVERHEAD = 64
_LINE_ENDS = {"1.1": b" HTTP/1.1\r\n", "1.0": b" HTTP/1.0\r\n"}  # a request line's, by version
_FIELD_LINE_OVERHEAD = 4


def _connection_tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in value.split(",")} if value else set()


class RequestParser:
    """Feed bytes in, get ``Request`` objects out (pipelining-safe).

    ``requests`` holds, in arrival order, every request whose head is complete
    and that the caller has not yet popped; the last one may still be receiving
    its body. After a framing error ``error`` is set, parsing stops, and the
    caller answers the requests before it and then ``error.status``. After an
    Upgrade request ``stopped`` is set: nothing after it is parsed, and that
    request has ``keep_alive`` False.

    A head still in flight is held to the limits too, so its memory stays
    bounded: at the end of each ``feed()`` that leaves a head unfinished, its
    unfinished line (the bytes after the last LF) may hold at most
    ``limits.request_line + 64`` bytes while it is the request line (else 414)
    and ``limits.field_size + 4`` bytes while it is a field line (else 431),
    the larger of the two while it is not known which: the longest lines the
    limits allow with one SP after the colon; whitespace counts while a line is
    in flight. As llhttp reports a field when the next one begins, and the count
    is checked then, a head in flight holds at most ``limits.request_line + 64 +
    (limits.fields + 1) * (limits.field_size + 4)`` bytes of lines.
    When a head begins in the same read as the end of a body, its bytes
    in that read are not counted (llhttp reports no offset), so a bound can be
    passed by at most that one read's length.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.requests: deque[Request] = deque()
        self.error: HttpError | None = None
        self.stopped = False
        self._current: Request | None = None
        self._head_complete = True  # no head in flight
        self._url = bytearray()
        self._field_count = 0
        self._fields: list[tuple[str, str]] = []  # the current section: headers, then trailers
        # The limits with 0 (unlimited) as a bound never reached: one comparison per callback.
        self._max_url = limits.request_line or sys.maxsize
        self._max_fields = limits.fields or sys.maxsize
        self._max_field_size = limits.field_size or sys.maxsize
        self._max_body = limits.body or sys.maxsize
        # The bounds on the unfinished line of a head in flight (see the class docstring).
        self._max_request_line = self._max_url + _REQUEST_LINE_OVERHEAD
        self._max_field_line = self._max_field_size + _FIELD_LINE_OVERHEAD
        self._in_flight: Request | None = None  # the head in flight at the last feed()'s end
        self._line = 0  # bytes of its unfinished line then
        self._body_seen = False  # body bytes came since: a head may begin after the last one
        self._request_line: bool | None = True  # that line is the request line (None: unknown)
        # A chunked body's lines (chunk-size lines with their extensions, trailer
        # fields) are bounded while in flight too: _chunk_lines is True while the
        # parser is between chunk data; _chunk_line the bytes of the unfinished line.
        self._chunk_lines = False
        self._in_trailers = False
        # the parser of an upgrade request's body (_start_body), else None
        self._body_parser: httptools.HttpRequestParser | None = None
        self._chunk_line = 0
        self._max_chunk_line = self._max_field_line
        # The request line is checked on the wire (_check_request_line): the bytes
        # of the current feed(), where to search them from, and the bytes of earlier
        # reads while a head is in flight.
        self._data = b""
        self._scan = 0
        self._carry = bytearray()
        self._parser = httptools.HttpRequestParser(self)

    @property
    def head_pending(self) -> bool:
        """True while a request head has started arriving but is not complete."""
        return self._current is not None and not self._head_complete

    # -- input ---------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse ``data`` (bytes as received); sets ``error`` instead of raising on bad input."""
        if self._body_parser is not None:
            self._feed_body(data)
            return
        if self.error is not None or self.stopped:
            return
        self._data, self._scan = data, 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # llhttp stops at an Upgrade head. We speak only HTTP/1.1: the request
            # is processed as if Upgrade were not there (RFC 9110 §7.8), body
            # included, and the connection closes after it, as nothing after
            # the head went through llhttp's framing.
            current = self._current
            if current is not None:
                current.keep_alive = False
                self.stopped = True
                if current.chunked or current.content_length:
                    self._start_body(current, data[upgrade.args[0] :])
                else:
                    current.complete = True
        except HttpError as exc:  # raised by our callbacks
            self._fail(exc)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, HttpError) else None
            self._fail(cause or HttpError(400, str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(self._refusal(str(exc)))
        else:
            if not self._head_complete:
                self._carry += data[self._scan :]  # bounded by one read and _bound_head
                self._bound_head(data)
            elif self._chunk_lines:
                self._bound_chunk_line(data)

    def _find_request_line(self, line: bytes) -> None:
        """Find ``line``, a request line on_headers_complete did not find in this read
        alone, in the reads of its head (``_carry``, then this one) from ``_scan`` on;
        HttpError 400 if it is not there."""
        carried = len(self._carry)
        data = bytes(self._carry) + self._data if carried else self._data
        end = data.find(line, self._scan)  # _scan is 0 when a head was carried
        self._carry.clear()
        if end < 0:
            raise HttpError(400, "request line is not method SP request-target SP HTTP-version")
        self._scan = max(0, end + len(line) - carried)

    def _start_body(self, request: Request, rest: bytes) -> None:
        """Read the body of a request llhttp stopped at (an Upgrade head) with a
        second llhttp parser, given a head with the same framing: de-chunking and
        the limits stay llhttp's and ours."""
        request.complete = False  # llhttp called it complete: its body was not read
        self._body_parser = httptools.HttpRequestParser(_BodyOnly(self))
        framing = (
            b"Transfer-Encoding: chunked"
            if request.chunked
            else b"Content-Length: %d" % (request.content_length or 0)
        )
        self._body_parser.feed_data(b"POST / HTTP/1.1\r\nHost: h\r\n" + framing + b"\r\n\r\n")
        # llhttp's on_message_complete for the head reset these: the first chunk-size line
        self._chunk_lines, self._chunk_line = request.chunked, 0
        if rest:
            self._feed_body(rest)

    def _feed_body(self, data: bytes) -> None:
        """Feed the body-only parser (see _start_body); errors as feed()'s."""
        assert self._body_parser is not None
        if self.error is not None or (self._current is not None and self._current.complete):
            return
        try:
            self._body_parser.feed_data(data)
        except HttpError as exc:
            self._fail(exc)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, HttpError) else None
            self._fail(cause or HttpError(400, str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(HttpError(400, str(exc)))
        else:
            if self._chunk_lines:
                self._bound_chunk_line(data)

    def _bound_chunk_line(self, data: bytes) -> None:
        """Measure the unfinished chunk-size line or trailer field line after
        ``data`` (the bytes after its last LF: llhttp refuses a bare LF); refuse
        a line past ``limits.field_size + 4`` bytes: 431 in the trailer section,
        400 for a chunk-size line's extensions (RFC 9112 §7.1.1). httptools
        would buffer either whole, copying it at every read."""
        lf = data.rfind(b"\n")
        self._chunk_line = self._chunk_line + len(data) if lf < 0 else len(data) - lf - 1
        if self._chunk_line > self._max_chunk_line:
            if self._in_trailers:
                self._fail(HttpError(431, "trailer field larger than limit_request_field_size"))
            else:
                self._fail(HttpError(400, "chunk extension longer than limit_request_field_size"))

    def _bound_head(self, data: bytes) -> None:
        """Measure the unfinished line of the head still in flight after ``data``;
        refuse it (414, 431) past the bounds of the class docstring.

        llhttp hands an unfinished request-target to ``on_url``, checked there,
        but httptools keeps an unfinished field line to itself until it is
        complete, so it is measured here from the wire: llhttp refuses a bare
        LF and obs-fold, so the bytes after the last LF are the unfinished line.
        """
        lf = data.rfind(b"\n")
        if self._current is not self._in_flight:  # the head began inside data
            self._in_flight = self._current
            if self._field_count or not self._body_seen:
                line = len(data) - lf - 1  # what follows the last LF is the head's
            else:
                line = 0  # it may begin after a body's last byte, at an offset we don't know
            self._body_seen = False
            if self._field_count:
                request_line: bool | None = False
            else:  # an LF in data may end the request line or precede the head
                request_line = True if lf < 0 else None
        else:
            line = self._line + len(data) if lf < 0 else len(data) - lf - 1
            request_line = self._request_line if lf < 0 else False
        if request_line:
            if line > self._max_request_line:
                self._fail(HttpError(414, "request line longer than limit_request_line"))
        elif line > (
            self._max_field_line
            if request_line is False
            else max(self._max_field_line, self._max_request_line)  # one or the other
        ):
            self._fail(HttpError(431, "header field larger than limit_request_field_size"))
        self._line, self._request_line = line, request_line

    def _refusal(self, reason: str) -> HttpError:
        """The status for an llhttp parse error: 505 for a version we don't speak
        (RFC 9110 §15.6.6; the HTTP/2 connection preface "PRI * HTTP/2.0" too), else 400."""
        if reason == "Invalid HTTP version" or self._parser.get_method() == b"PRI":
            return HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        return HttpError(400, reason)

    def _fail(self, error: HttpError) -> None:
        if self.error is None:
            self.error = error
        # A request whose body broke keeps its place: its reader sees the error.

    # -- httptools callbacks (names fixed by httptools) -----------------------
    def on_message_begin(self) -> None:
        """httptools: a new message starts; its ``Request`` is made."""
        self._current = request = Request()
        self._fields = request.headers
        self._head_complete = False
        self._url.clear()
        self._field_count = 0

    def on_url(self, url: bytes) -> None:
        """httptools: a piece of the request-target. HttpError 414 past --limit-request-line."""
        self._url += url
        if len(self._url) > self._max_url:
            raise HttpError(414, "request-target longer than limit_request_line")

    def on_header(self, name: bytes, value: bytes) -> None:
        """httptools: one header (or trailer) field, name and value as on the wire.

        HttpError 431 past --limit-request-fields (a count) or
        --limit-request-field-size (name plus value, in bytes).
        """
        self._field_count += 1
        if self._head_complete and name.decode("latin-1").lower() in _NOT_IN_TRAILERS:
            return  # RFC 9110 §6.5.1: never merged into the request; dropped
        if self._field_count > self._max_fields:
            raise HttpError(431, "more header fields than limit_request_fields")
        if len(name) + len(value) > self._max_field_size:
            raise HttpError(431, "header field larger than limit_request_field_size")
        self._fields.append((name.decode("latin-1"), value.decode("latin-1").strip(" \t")))

    def on_headers_complete(self) -> None:
        """httptools: the head is complete; check it and queue its ``Request``.

        Raises HttpError for what llhttp leaves to us: 505 (version), 501
        (CONNECT, unimplemented codings), 400 (Host, RFC 9112 §3.2; target;
        Transfer-Encoding, RFC 9112 §6.1, §6.3), 413 (Content-Length).
        """
        request = self._current
        assert request is not None
        self._head_complete = True
        self._fields = request.trailers  # what follows a chunked body, RFC 9112 §7.1.2
        version = request.http_version = self._parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise HttpError(505, f"HTTP/{version} is not supported")
        method_bytes = self._parser.get_method()
        target = bytes(self._url)
        # RFC 9112 §3: the request line, byte for byte, in what was received, searched
        # from the end of the last one found: llhttp skips extra spaces around the target
        line = method_bytes + b" " + target + _LINE_ENDS[version]
        end = -1 if self._carry else self._data.find(line, self._scan)
        if end < 0:
            self._find_request_line(line)  # the head came in several reads, or a 400
        else:
            self._scan = end + len(line)
        method = request.method = method_bytes.decode("ascii")
        if method == "CONNECT":
            raise HttpError(501, "CONNECT is not supported")  # we are no proxy
        self._parse_target(request, target)

        hosts = 0
        framing: dict[str, str] = {}  # lower-case name -> first value, as Request.header()
        singletons: dict[str, str] = {}
        for key, value in request.headers:
            lowered = key.lower()
            if lowered in _SINGLETONS:
                if singletons.setdefault(lowered, value) != value:  # RFC 9110 §5.3
                    raise HttpError(400, f"{key} sent twice with different values")
            elif lowered in _FRAMING_FIELDS:
                if lowered == "host":
                    hosts += 1
                if lowered not in framing:
                    framing[lowered] = value
                elif lowered in _LIST_FIELDS:  # lists: their lines combine, RFC 9110 §5.3
                    framing[lowered] += "," + value
        if hosts != 1 and (hosts or version == "1.1"):
            raise HttpError(400, "HTTP/1.1 needs exactly one Host header")  # RFC 9112 §3.2
        if hosts and framing["host"] not in _VALID_HOSTS:
            if not _HOST.fullmatch(framing["host"]):
                raise HttpError(400, 'Host is not a uri-host [ ":" port ]')  # RFC 9112 §3.2
            if len(_VALID_HOSTS) < 1024:  # bounded: a client making up names only fills it
                _VALID_HOSTS.add(framing["host"])
        if len(framing) > (hosts > 0):  # fields other than Host that frame the message
            self._framing(request, framing)
        else:
            request.keep_alive = version == "1.1"  # RFC 9112 §9.3
        self.requests.append(request)

    def _framing(self, request: Request, framing: dict[str, str]) -> None:
        """Body framing, persistence and expectation from the request's framing fields."""
        version = request.http_version
        transfer_encoding = framing.get("transfer-encoding")
        if transfer_encoding is not None:
            if version == "1.0":
                raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 §6.1
            if transfer_encoding.lower() != "chunked" and _codings(transfer_encoding) != [
                "chunked"
            ]:
                _refuse_transfer_coding(transfer_encoding)
            request.chunked = True
            self._chunk_lines, self._chunk_line = True, 0  # the first chunk-size line
        content_length = framing.get("content-length")
        if content_length is not None:
            request.content_length = int(content_length)  # llhttp checked it is digits
            if request.content_length > self._max_body:
                raise HttpError(413, "Content-Length larger than limit_request_body")

        connection = _connection_tokens(framing.get("connection"))
        if version == "1.1":
            request.keep_alive = "close" not in connection  # RFC 9112 §9.3
        else:
            request.keep_alive = "keep-alive" in connection
        expect = framing.get("expect")
        request.expect_continue = (
            expect is not None and expect.lower() == "100-continue" and version == "1.1"
        )

    def _parse_target(self, request: Request, target: bytes) -> None:
        request.target = target
        if target == b"*":
            if request.method != "OPTIONS":
                raise HttpError(400, "asterisk-form is only for OPTIONS")
            request.path = b"*"
            return
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            raise HttpError(400, "invalid request-target") from None
        request.path = url.path or b"/"
        request.query = url.query or b""
        if url.host:  # absolute-form: its authority is the request's (RFC 9112 §3.2.2)
            host = url.host.decode("latin-1")
            if ":" in host:
                host = f"[{host}]"  # an IPv6 literal, as it was bracketed in the target
            request.authority = f"{host}:{url.port}" if url.port else host

    def on_chunk_header(self) -> None:
        """httptools: a chunk-size line ended; its data, or the trailers if it was
        the last chunk (no body bytes follow then)."""
        self._in_trailers = True  # until a body byte says otherwise
        self._chunk_line = 0

    def on_chunk_complete(self) -> None:
        """httptools: a chunk's data and its CRLF ended (after the trailers for the last)."""
        self._chunk_lines, self._in_trailers, self._chunk_line = True, False, 0

    def on_body(self, body: bytes) -> None:
        """httptools: body bytes (de-chunked). HttpError 413 past --limit-request-body."""
        self._chunk_lines = self._in_trailers = False
        request = self._current
        assert request is not None
        request.body_received += len(body)
        if request.body_received > self._max_body:
            raise HttpError(413, "request body larger than limit_request_body")
        if request.body is NO_BODY:
            request.body = Body()
        request.body.append(body)
        self._body_seen = True

    def on_message_complete(self) -> None:
        """httptools: the message ended (body and trailers included)."""
        self._chunk_lines = self._in_trailers = False
        assert self._current is not None
        self._current.complete = True


class _BodyOnly:
    """httptools callbacks of the body-only parser: the body's go to ``parser``,
    the synthetic head's nowhere."""

    def __init__(self, parser: RequestParser) -> None:
        self.on_body = parser.on_body
        self.on_chunk_header = parser.on_chunk_header
        self.on_chunk_complete = parser.on_chunk_complete
        self.on_message_complete = parser.on_message_complete


def _codings(transfer_encoding: str) -> list[str]:
    """The codings of a Transfer-Encoding value, lower case; empty list elements
    are skipped (RFC 9110 §5.6.1: ", chunked" is "chunked")."""
    return [c for c in (c.strip(" \t").lower() for c in transfer_encoding.split(",")) if c]


def _refuse_transfer_coding(transfer_encoding: str) -> NoReturn:
    """Raise the HttpError for a Transfer-Encoding other than "chunked".

    400 when chunked is not the final coding, as the body's length is then
    unknown (RFC 9112 §6.3); 501 for codings before a final chunked, which we
    don't implement (RFC 9112 §6.1, RFC 9110 §15.6.2). Empty list elements are
    skipped (RFC 9110 §5.6.1).
    """
    codings = _codings(transfer_encoding)
    if not codings or codings[-1] != "chunked":
        raise HttpError(400, f"chunked is not the final transfer coding: {transfer_encoding}")
    raise HttpError(501, f"transfer coding not implemented: {transfer_encoding}")

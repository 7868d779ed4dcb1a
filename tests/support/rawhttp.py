"""Raw HTTP/1.1: requests built byte for byte (no client library would send
some of these), and the one parser of what comes back.

Responses are parsed by h11, a strict, independent HTTP/1.1 implementation, so
the framing of what a server sent is checked too: ``ResponseParser`` reads them
one at a time from the bytes of one connection, ``Client`` reads them from a
socket as they arrive (the conformance suite, the server's unit tests), and
``parse_responses`` judges a whole exchange (the stack's smuggling and limit
tests: every payload must be refused or normalised, and a follow-up request
on the same connection must get its own response, no desync).

``exchange`` sends a payload and reads until the peer closes or goes silent;
the stack tests run it on this machine against nginx (``exchange_tls``) and,
through ``docker exec``, inside the app container against our server's
internal port (``exchange_in_container``, stdlib only).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from dataclasses import dataclass, field

import h11

IDLE_TIMEOUT = 2.0  # seconds without a byte before a connection counts as hanging
REFUSED = {400, 411, 413, 414, 417, 431, 501, 505}  # statuses that refuse a request
MAX_INCOMPLETE = 1 << 20  # bytes of a response head (or chunk header) h11 may wait for


def request(
    method: str = "GET",
    target: str = "/echo",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str = "localhost",
) -> bytes:
    """A request's bytes. Unless ``headers`` has them, ``Host: host`` comes first
    (HTTP/1.1 only) and a body gets its Content-Length."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names and version == "HTTP/1.1":
        headers.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


# -- responses ------------------------------------------------------------------


@dataclass
class Response:
    """One response: status, headers (names as sent, every field in order) and
    body; the 1xx statuses that came before it, and the bytes it came in."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)
    raw: bytes = b""

    def header_values(self, name: str) -> list[str]:
        """The value of each field called ``name`` (any case), in order."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The fields called ``name`` combined (values joined by ","), None without one."""
        values = self.header_values(name)
        return ",".join(values) if values else None

    def json(self):
        return json.loads(self.body)


class ResponseParser:
    """The responses in what one connection received, one at a time.

    ``feed`` it the bytes received (b"" for the end of the stream) and ask
    ``next(method)`` for each response: h11 frames a response by its request's
    method (the answer to a HEAD has no body).
    """

    def __init__(self) -> None:
        self.unread = b""  # received and not part of a response read yet
        self.eof = False  # the end of the stream was received
        self.partial = False  # a response's head was read, not yet its end
        self.closing = False  # the last response read ends the connection
        self._conn: h11.Connection | None = None  # parsing the response under way
        self._given = b""  # the bytes _conn was given
        self._reading: Response | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
        if self._conn is None:
            self.unread += data
        else:
            self._given += data
            self._conn.receive_data(data)

    def next(self, method: str = "GET") -> Response | None:
        """The next complete response (and any 1xx before it), or None until more
        bytes come. h11.RemoteProtocolError when they are not a clean HTTP/1.1
        response, or the stream ends in one. ``method`` counts when a response
        begins (the first call that returns None carries on with it)."""
        if self._conn is None:
            self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_INCOMPLETE)
            self._conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
            self._conn.send(h11.EndOfMessage())
            self._given, self.unread = self.unread, b""
            if self._given:
                self._conn.receive_data(self._given)  # b"" would mean end of stream to h11
            if self.eof:
                self._conn.receive_data(b"")
            self._reading = Response(0, [], b"")
        conn, response = self._conn, self._reading
        assert response is not None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.InformationalResponse):
                response.interim.append(event.status_code)
            elif isinstance(event, h11.Response):
                response.status = event.status_code
                response.headers = [
                    (k.decode(), v.decode("latin-1")) for k, v in event.headers.raw_items()
                ]
                self.partial = True
            elif isinstance(event, h11.Data):
                response.body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        self.unread, _ = conn.trailing_data
        response.raw = self._given[: len(self._given) - len(self.unread)]
        self.closing = not (conn.our_state is h11.DONE and conn.their_state is h11.DONE)
        self.partial, self._conn, self._reading = False, None, None
        return response


def parse_responses(data: bytes, closed: bool) -> tuple[list[Response], str | None]:
    """Split ``data`` (all a connection received, ``closed`` if the peer closed
    it) into responses to GET requests.

    Returns the responses and a problem, or None when ``data`` is exactly a
    sequence of complete responses (bytes after a response that closes the
    connection, a truncated response or non-HTTP bytes are problems).
    """
    parser = ResponseParser()
    parser.feed(data)
    if closed:
        parser.feed(b"")
    responses: list[Response] = []
    while True:
        try:
            response = parser.next()
        except h11.RemoteProtocolError as exc:
            return responses, f"not a clean HTTP/1.1 response: {exc}"
        if response is None:
            return responses, "truncated response" if parser.partial else None
        responses.append(response)
        if parser.closing:
            if parser.unread:
                return responses, f"{len(parser.unread)} bytes after a closing response"
            return responses, None
        if not parser.unread:
            return responses, None


class Client:
    """Raw bytes out, parsed responses in, over one connection (``sock``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = ResponseParser()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET") -> Response:
        """Read exactly one response (plus any 1xx before it) to a ``method`` request."""
        while (response := self.parser.next(method)) is None:
            self.parser.feed(self.sock.recv(65536))
        return response

    def read_all(self) -> bytes:
        """Every byte not read as a response, until the server closes the
        connection (EOF or reset), waiting at most the socket's timeout for each."""
        raw, self.parser.unread = self.parser.unread, b""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return raw
            if not data:
                return raw
            raw += data

    def closed(self) -> bool:
        """True if the server closed the connection (EOF or reset) with nothing more sent."""
        if self.parser.unread:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


# -- exchanges: a payload out, everything back ------------------------------------


def exchange(sock: socket.socket, payload: bytes, idle_timeout: float = IDLE_TIMEOUT):
    """Send ``payload``, read until the peer closes or stays silent ``idle_timeout``
    seconds; return (bytes received, closed by the peer)."""
    sock.settimeout(idle_timeout)
    try:
        sock.sendall(payload)
    except OSError:
        pass  # refused mid-send: what was answered is still to be read
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return received, False
        except OSError:  # reset: the peer closed
            return received, True
        if not data:
            return received, True
        received += data


# The same as `exchange`, for `python -c` inside the app container: argv[1] is
# JSON {"port": int, "payloads": [base64], "idle_timeout": float}; prints JSON
# [[base64 received, closed], ...], one connection per payload.
IN_CONTAINER = """
import base64, json, socket, sys
args = json.loads(sys.argv[1])
results = []
for encoded in args["payloads"]:
    sock = socket.create_connection(("127.0.0.1", args["port"]), timeout=5)
    sock.settimeout(args["idle_timeout"])
    try:
        sock.sendall(base64.b64decode(encoded))
    except OSError:
        pass
    received, closed = b"", False
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        received += data
    sock.close()
    results.append([base64.b64encode(received).decode(), closed])
print(json.dumps(results))
"""


def exchange_in_container(
    container, payloads: list[bytes], port: int = 8000, idle_timeout: float = IDLE_TIMEOUT
) -> list[tuple[bytes, bool]]:
    """Each payload on its own connection to 127.0.0.1:``port`` inside ``container``
    (a docker SDK container)."""
    args = json.dumps(
        {
            "port": port,
            "idle_timeout": idle_timeout,
            "payloads": [base64.b64encode(p).decode() for p in payloads],
        }
    )
    result = container.exec_run(["python", "-c", IN_CONTAINER, args], demux=True)
    stdout, stderr = result.output
    assert result.exit_code == 0, (stderr or b"").decode()
    return [(base64.b64decode(data), closed) for data, closed in json.loads(stdout)]


def exchange_tls(
    port: int, context: ssl.SSLContext, payload: bytes, idle_timeout: float = IDLE_TIMEOUT
) -> tuple[bytes, bool]:
    """``exchange`` over a new TLS connection (ALPN http/1.1) to localhost:``port``."""
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("localhost", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return exchange(tls, payload, idle_timeout)


def first_response(data: bytes, closed: bool) -> Response:
    """The first response of an exchange that must be clean responses only."""
    responses, problem = parse_responses(data, closed)
    assert problem is None and responses, data[:500]
    return responses[0]

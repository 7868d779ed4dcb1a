"""HTTP/2-to-HTTP/1.1 downgrade smuggling: requests nginx must not turn into
ambiguous HTTP/1.1 for the app, sent with the h2 library told not to validate
or normalise what it sends.

Each attack is a stream to /api/echo carrying `x-probe: attack-<id>`: a
content-length that disagrees with the DATA frames, a transfer-encoding header,
CR/LF or NUL in a header value, the method or the path, forbidden
connection-specific headers, malformed pseudo-headers. Pass: the stream is
refused (RST_STREAM, GOAWAY or a 4xx) or served as the app's echo of exactly
what was sent (normalised: nginx re-frames the body with a Content-Length and
drops Transfer-Encoding), a follow-up stream on the same connection (or a new
connection after a GOAWAY) gets its own echo, and the app never runs the
`GET /api/status?code=418` some attacks try to slip in.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field

import h2.connection
import h2.events
import pytest
from h2.config import H2Configuration

from tests.support import wait_until
from tests.support.rawhttp import REFUSED

pytestmark = pytest.mark.integration

HIDDEN = b"GET /api/status?code=418 HTTP/1.1\r\nHost: localhost\r\n\r\n"


@dataclass
class Stream:
    """What came back on one stream."""

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None  # RST_STREAM error code


class H2Client:
    """One HTTP/2 connection to nginx over TLS (ALPN h2)."""

    def __init__(self, port: int, context) -> None:
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("localhost", port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(
            H2Configuration(
                client_side=True,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.streams: dict[int, Stream] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.conn.initiate_connection()
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send(self, headers: list[tuple[bytes, bytes]], data: list[bytes]) -> int:
        """Open a stream with ``headers`` and the DATA frames ``data``; returns its id."""
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = Stream()
        self.conn.send_headers(stream_id, headers, end_stream=not data)
        for index, chunk in enumerate(data):
            self.conn.send_data(stream_id, chunk, end_stream=index == len(data) - 1)
        self._flush()
        return stream_id

    def wait(self, stream_id: int, timeout: float = 5.0) -> Stream:
        """Read until the stream ends or is reset, the connection goes, or ``timeout`` s."""
        stream = self.streams[stream_id]
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while not (stream.ended or stream.reset is not None or self.closed):
            if self.terminated is not None and stream_id > self.terminated.last_stream_id:
                break
            if time.monotonic() > deadline:
                break
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            for event in self.conn.receive_data(data):
                self._handle(event)
            self._flush()
        return stream

    def _handle(self, event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", None) or 0)
        if isinstance(event, h2.events.ResponseReceived) and stream:
            stream.headers = list(event.headers)
            stream.status = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived) and stream:
            stream.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded) and stream:
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset) and stream:
            stream.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        finally:
            self.sock.close()


def _request(port: int, probe: str, method: bytes = b"POST", path: bytes = b"/api/echo"):
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"localhost:%d" % port),
        (b":path", path),
        (b"x-probe", probe.encode()),
    ]


# name -> (extra headers, or a function of the port building all of them; DATA frames)
def _attacks(port: int) -> dict[str, tuple[list[tuple[bytes, bytes]], list[bytes]]]:
    def base(name: str, **kw) -> list[tuple[bytes, bytes]]:
        return _request(port, f"attack-{name}", **kw)

    def with_headers(name: str, *extra: tuple[bytes, bytes], **kw):
        return base(name, **kw) + list(extra)

    return {
        "cl-larger-than-data": (
            with_headers("cl-larger-than-data", (b"content-length", b"20")),
            [b"hello"],
        ),
        "cl-smaller-than-data": (
            with_headers("cl-smaller-than-data", (b"content-length", b"2")),
            [b"hello" + HIDDEN],
        ),
        "cl-zero-with-data": (
            with_headers("cl-zero-with-data", (b"content-length", b"0")),
            [HIDDEN],
        ),
        "te-chunked": (
            with_headers("te-chunked", (b"transfer-encoding", b"chunked")),
            [b"0\r\n\r\n" + HIDDEN],
        ),
        "te-chunked-and-cl": (
            with_headers(
                "te-chunked-and-cl",
                (b"transfer-encoding", b"chunked"),
                (b"content-length", b"%d" % (5 + len(HIDDEN))),
            ),
            [b"0\r\n\r\n" + HIDDEN],
        ),
        "crlf-in-value": (
            with_headers("crlf-in-value", (b"x-note", b"a\r\nTransfer-Encoding: chunked")),
            [b"0\r\n\r\n" + HIDDEN],
        ),
        "lf-in-value": (
            with_headers("lf-in-value", (b"x-note", b"a\nContent-Length: 0")),
            [HIDDEN],
        ),
        "nul-in-value": (with_headers("nul-in-value", (b"x-note", b"a\x00b")), [b"x"]),
        "crlf-in-path": (
            base(
                "crlf-in-path", path=b"/api/echo HTTP/1.1\r\nHost: localhost\r\n\r\n" + HIDDEN[:-4]
            ),
            [b"x"],
        ),
        "space-in-path": (base("space-in-path", path=b"/api/echo /api/status?code=418"), [b"x"]),
        "crlf-in-method": (base("crlf-in-method", method=HIDDEN + b"POST"), [b"x"]),
        "colon-in-header-name": (with_headers("colon-in-header-name", (b"x-a:b", b"c")), [b"x"]),
        "space-in-header-name": (
            with_headers("space-in-header-name", (b"transfer-encoding ", b"chunked")),
            [b"0\r\n\r\n" + HIDDEN],
        ),
        "uppercase-header-name": (
            with_headers("uppercase-header-name", (b"Transfer-Encoding", b"chunked")),
            [b"0\r\n\r\n" + HIDDEN],
        ),
        "connection-header": (
            with_headers("connection-header", (b"connection", b"keep-alive")),
            [b"x"],
        ),
        "te-not-trailers": (with_headers("te-not-trailers", (b"te", b"gzip")), [b"x"]),
        "upgrade-header": (with_headers("upgrade-header", (b"upgrade", b"h2c")), [b"x"]),
        "host-differs-from-authority": (
            with_headers("host-differs-from-authority", (b"host", b"evil.example")),
            [b"x"],
        ),
        "pseudo-header-after-regular": (
            base("pseudo-header-after-regular")[:3]
            + [(b"x-probe", b"attack-pseudo-header-after-regular"), (b":path", b"/api/echo")],
            [b"x"],
        ),
        "duplicate-path": (
            with_headers("duplicate-path", (b":path", b"/api/status?code=418")),
            [b"x"],
        ),
    }


ATTACK_NAMES = list(_attacks(0))


def _probe(stream: Stream) -> str | None:
    if stream.status != 200:
        return None
    try:
        return json.loads(stream.body)["headers"].get("X-Probe")
    except (ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def hidden_before(stack):
    return stack.request_count("GET", 418)


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_h2_attack_is_refused_or_normalised(stack, hidden_before, name):
    port = stack.https_port
    headers, data = _attacks(port)[name]
    client = H2Client(port, stack.ssl_context())
    try:
        attack = client.wait(client.send(headers, data))
        refused = (
            attack.reset is not None
            or (attack.status is not None and attack.status in REFUSED)
            or (client.terminated is not None and attack.status is None)
            or (client.closed and attack.status is None)
        )
        if not refused:
            assert attack.ended and 200 <= (attack.status or 0) < 300, attack
            assert _probe(attack) == f"attack-{name}", attack.body[:300]
            seen = json.loads(attack.body)
            assert seen["body_size"] == sum(len(chunk) for chunk in data)  # the DATA, no more
            # No connection-specific header reached the app (RFC 9113 §8.2.2).
            assert not {"Transfer-Encoding", "Connection", "Upgrade", "Te"} & set(seen["headers"])
        # The follow-up, on this connection if it is still open, else on a new one.
        if client.terminated is not None or client.closed:
            client.close()
            client = H2Client(port, stack.ssl_context())
        follow = client.wait(client.send(_request(port, f"follow-{name}", method=b"GET"), []))
        assert follow.status == 200 and _probe(follow) == f"follow-{name}", follow
    finally:
        client.close()


def test_h2_attacks_ran_no_hidden_request(stack, hidden_before):
    """Runs after the attacks above (file order)."""
    assert wait_until(
        lambda: stack.request_count("GET", 418) == hidden_before, timeout=3, interval=0.2
    )

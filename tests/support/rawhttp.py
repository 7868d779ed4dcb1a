"""Raw HTTP/1.1 exchanges for the request-smuggling and limit tests.

A payload goes out byte for byte (no client library would send these); what
comes back is split into responses by h11, and judged: every payload must be
refused or normalised, and a follow-up request sent on the same connection
must get its own response (no desync). The same exchange runs on this machine
against nginx (TLS) and, through ``docker exec``, inside the app container
against our server's internal port (``IN_CONTAINER``, stdlib only).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from dataclasses import dataclass

import h11

IDLE_TIMEOUT = 2.0  # seconds without a byte before a connection counts as hanging
REFUSED = {400, 411, 413, 414, 417, 431, 501, 505}  # statuses that refuse a request


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
    """Each payload on its own connection to 127.0.0.1:``port`` inside ``container``."""
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


@dataclass
class Response:
    """One response: status, headers (names lower-cased, every value), body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def json(self) -> object:
        return json.loads(self.body)


def parse_responses(data: bytes, closed: bool) -> tuple[list[Response], str | None]:
    """Split ``data`` into HTTP/1.1 responses with h11.

    Returns the responses and a problem, or None when ``data`` is exactly a
    sequence of complete responses (bytes after a response that closes the
    connection, a truncated response or non-HTTP bytes are problems).
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    if closed:
        conn.receive_data(b"")
    responses: list[Response] = []
    current: Response | None = None
    while True:
        if conn.our_state is h11.IDLE:  # h11 frames a response by its request's method
            if responses and not conn.trailing_data[0]:
                return responses, None  # every byte read
            conn.send(h11.Request(method="GET", target="/", headers=[("Host", "localhost")]))
            conn.send(h11.EndOfMessage())
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return responses, f"not a clean HTTP/1.1 response: {exc}"
        if event is h11.NEED_DATA:
            return responses, "truncated response" if current else None
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            headers = [(k.decode().lower(), v.decode("latin-1")) for k, v in event.headers]
            current = Response(event.status_code, headers, b"")
        elif isinstance(event, h11.Data):
            assert current is not None
            current.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            responses.append(current)
            current = None
            if conn.their_state is h11.DONE and conn.our_state is h11.DONE:
                conn.start_next_cycle()
                continue
            leftover, _ = conn.trailing_data
            if leftover:
                return responses, f"{len(leftover)} bytes after a closing response"
            return responses, None
        elif isinstance(event, h11.ConnectionClosed):
            return responses, None


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """A well-formed request (Host: localhost first), for follow-ups and limits."""
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def wait_until(predicate, timeout: float, interval: float = 0.2):
    """Poll ``predicate`` until it returns a true value or ``timeout`` seconds pass;
    returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)

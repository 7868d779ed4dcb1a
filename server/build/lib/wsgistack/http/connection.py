"""A client connection: its socket, its peer, and its request parser."""

from __future__ import annotations

import socket
import struct

from .._types import Environ
from .parser import Limits, RequestParser

RECV_SIZE = 64 * 1024  # bytes per recv(2)


class ClientDisconnected(ConnectionError):
    """The client closed the connection before the request was read."""


class Connection:
    """One accepted TCP or Unix-socket connection.

    ``peer`` is (host, port) for TCP, ("", 0) for Unix sockets; ``local`` is
    the listening address (host, port) as PEP 3333's SERVER_NAME/SERVER_PORT.

    The socket stays in blocking mode for its whole life, with the kernel's
    send and receive timeouts (SO_SNDTIMEO, SO_RCVTIMEO) set to ``io_timeout``
    seconds (None: no limit): a handler's recv/send blocks at most that long,
    then fails with an OSError. Python's own socket timeouts would cost a
    poll(2) before every recv(2) and send(2); the event loop reads only
    readable sockets, without waiting (``receive(wait=False)``).
    """

    __slots__ = (
        "sock",
        "peer",
        "local",
        "parser",
        "idle_since",
        "lingering",
        "aborted",
        "io_timeout",
        "environ_base",
    )

    def __init__(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        local: tuple[str, int],
        limits: Limits,
        io_timeout: float | None = None,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.local = local
        self.parser = RequestParser(limits)
        self.idle_since = 0.0
        self.lingering = False  # half-closed after a refusal: input is read and dropped
        # a close-delimited response was cut short: end with a reset, not a FIN that
        # would make it look complete (RFC 9112 §6.3, 8)
        self.aborted = False
        self.io_timeout = io_timeout
        # The environ entries that are the same for every request on this connection
        # and whether the peer is trusted (WSGIHandler fills it on the first request).
        self.environ_base: tuple[Environ, bool] | None = None
        if sock.gettimeout() is not None:  # an app's socket.setdefaulttimeout()
            sock.settimeout(None)
        if io_timeout:
            seconds = int(io_timeout)
            timeval = struct.pack("@ll", seconds, int((io_timeout - seconds) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def fileno(self) -> int:
        """The socket's file descriptor (for selectors)."""
        return self.sock.fileno()

    def receive(self, wait: bool = True) -> None:
        """Read once and parse what came; ``wait`` False takes only what has
        already arrived (BlockingIOError when nothing has).

        Raises ClientDisconnected on end of stream, OSError on socket errors
        (BlockingIOError when io_timeout passed).
        """
        data = self.sock.recv(RECV_SIZE, 0 if wait else socket.MSG_DONTWAIT)
        if not data:
            raise ClientDisconnected("client closed the connection")
        self.parser.feed(data)

    def close(self) -> None:
        """Close the socket; never raises OSError."""
        try:
            self.sock.close()
        except OSError:
            pass

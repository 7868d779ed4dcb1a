"""A client connection: its socket, its peer, and its request parser."""

from __future__ import annotations

import socket

from .protocol import Limits, RequestParser

RECV_SIZE = 64 * 1024  # bytes per recv(2)


class ClientDisconnected(ConnectionError):
    """The client closed the connection before the request was read."""


class Connection:
    """One accepted TCP or Unix-socket connection.

    ``peer`` is (host, port) for TCP, ("", 0) for Unix sockets; ``local`` is
    the listening address (host, port) as PEP 3333's SERVER_NAME/SERVER_PORT.
    The event loop uses the socket non-blocking; a handler switches it to
    blocking with ``io_timeout`` seconds while it serves a request.
    """

    __slots__ = ("sock", "peer", "local", "parser", "idle_since", "lingering")

    def __init__(
        self, sock: socket.socket, peer: tuple[str, int], local: tuple[str, int], limits: Limits
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.local = local
        self.parser = RequestParser(limits)
        self.idle_since = 0.0
        self.lingering = False  # half-closed after a refusal: input is read and dropped

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> None:
        """Read once (blocking per the socket's mode) and parse what came.

        Raises ClientDisconnected on end of stream, OSError on socket errors
        (socket.timeout included).
        """
        data = self.sock.recv(RECV_SIZE)
        if not data:
            raise ClientDisconnected("client closed the connection")
        self.parser.feed(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

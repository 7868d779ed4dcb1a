"""A client connection: its socket, its peer, and its request parser."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

from .._types import Environ
from .parser import Limits, RequestParser

RECV_SIZE = 64 * 1024  # bytes per recv(2) of a body
# bytes per recv(2) while no request head is complete: a head fits (nginx's, a
# browser's), and a connection whose body waits for its turn (the inline loop reads
# one at a time, see worker._LOOP_BODY_BUDGET) holds this much of it, not RECV_SIZE
HEAD_RECV_SIZE = 8 * 1024
SEND_SLICE = 256 * 1024  # bytes per sendall(2) of a large write, progress between


class ClientDisconnected(ConnectionError):
    """The client closed the connection before the request was read."""


class Stalled(Exception):
    """An inline send found the client's socket buffer full (``Connection.inline``): the
    bytes not sent wait in ``Connection.unsent`` for a thread that may block on them."""


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

    ``offload``: the connection is served in the event loop's own thread, which
    must never wait for a client; ``inline`` is set while the server (not the
    app: PEP 3333's write() is called from the app's own frame) sends a
    response then: ``send`` takes what the socket buffer takes without
    waiting and raises Stalled for the rest, kept in ``unsent``; the worker
    then hands the connection to a thread, where the response goes on.
    ``app_lock``: held by that thread while it runs the app, released while it
    waits for the client, so the app never runs in two threads at once.
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
        "progressed_at",
        "on_progress",
        "environ_base",
        "offload",
        "inline",
        "unsent",
        "app_lock",
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
        # When data last moved to or from the client (time.monotonic()), and who
        # else is told (the inline worker's heartbeat): a slow client that makes
        # progress is no hung app (--timeout), one that makes none is cut off by
        # io_timeout (--client-timeout).
        self.progressed_at = 0.0
        self.on_progress: Callable[[float], None] | None = None
        # The environ entries that are the same for every request on this connection
        # and whether the peer is trusted (WSGIHandler fills it on the first request).
        self.environ_base: tuple[Environ, bool] | None = None
        self.offload = False
        self.inline = False
        self.unsent = b""
        self.app_lock: threading.Lock | None = None
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
        size = RECV_SIZE if self.parser.requests else HEAD_RECV_SIZE
        if wait and self.app_lock is not None:
            with _released(self.app_lock):
                data = self.sock.recv(size)
        else:
            data = self.sock.recv(size, 0 if wait else socket.MSG_DONTWAIT)
        if not data:
            raise ClientDisconnected("client closed the connection")
        if wait:  # a handler waiting for a body: it progresses
            self.progress()
        self.parser.feed(data)

    def send(self, data: bytes) -> None:
        """Send all of ``data``, in slices of SEND_SLICE bytes, each one progress.
        Raises OSError (BlockingIOError when a slice made no progress for io_timeout);
        Stalled when ``inline`` and the socket takes only part of it."""
        if self.inline:
            sent = self._send_now(data)
            if sent < len(data):
                self.unsent = data[sent:]
                raise Stalled
            self.progress()
            return
        if self.app_lock is not None:
            with _released(self.app_lock):
                self._send_all(data)
            return
        self._send_all(data)

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        """Around a wait for the client outside ``send``/``receive`` (sendfile(2)): the
        app lock released meanwhile, if this connection's thread holds one."""
        return _released(self.app_lock) if self.app_lock is not None else contextlib.nullcontext()

    def send_unsent(self) -> None:
        """Send, waiting as ``send`` does, what a Stalled inline send left."""
        if self.unsent:
            data, self.unsent = self.unsent, b""
            self.send(data)

    def _send_now(self, data: bytes) -> int:
        """Send what the socket buffer takes now, without waiting; bytes sent."""
        sent = 0
        try:
            while sent < len(data):
                sent += self.sock.send(data[sent:] if sent else data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            pass
        return sent

    def _send_all(self, data: bytes) -> None:
        if len(data) > SEND_SLICE:
            view = memoryview(data)
            for start in range(0, len(data), SEND_SLICE):
                self.sock.sendall(view[start : start + SEND_SLICE])
                self.progress()
            return
        self.sock.sendall(data)
        self.progress()

    def progress(self) -> None:
        """Data moved: note when, and beat the inline worker's heartbeat."""
        now = self.progressed_at = time.monotonic()
        if self.on_progress is not None:
            self.on_progress(now)

    def close(self) -> None:
        """Close the socket; never raises OSError."""
        try:
            self.sock.close()
        except OSError:
            pass


class _released:
    """Context manager: ``lock`` released inside, taken again on the way out."""

    __slots__ = ("lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        self.lock.release()

    def __exit__(self, *exc: object) -> None:
        self.lock.acquire()

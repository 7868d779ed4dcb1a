"""A worker process: one event loop over the listening sockets and idle
connections, handing each connection with a complete request head to a handler.

With ``--threads 1`` the handler runs inline in the loop thread (the fastest
path, one request at a time, like gunicorn's sync worker but with keep-alive
and pipelining). The loop never waits for a client there: a request whose
body is still arriving, or a response the client does not take at once,
goes to an offload thread that may wait (at most --client-timeout at a
time), while the loop serves the others; the app still runs in one thread
at a time (the offload threads hold the worker's app lock except while they
wait for their client). With ``--threads N`` a pool of N threads runs the
app while the loop keeps accepting and watching idle connections; when all
N are busy the worker stops accepting, so the kernel's queue and the other
workers take the load (accept back-pressure). A thread done with a keep-alive
request re-arms its connection and takes the next waiting request itself
(Worker._handler_thread), so the loop sees a request once, when it arrives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import random
import resource
import select
import selectors
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import logs
from ._types import Environ, WSGIApp
from .config import Config
from .heartbeat import Heartbeat
from .hooks import run_hook
from .http.connection import RECV_SIZE, ClientDisconnected, Connection
from .http.parser import HttpError, Limits, Request
from .http.response import Response, error_response
from .metrics import instruments as metrics
from .wsgi import Handled, WSGIHandler, load_app

if TYPE_CHECKING:
    from prometheus_client import Histogram

WORKER_BOOT_ERROR = 3  # exit status: the app failed to import; the master must not respawn
WORKER_MAX_REQUESTS = 4  # exit status: served --max-requests, retired gracefully
WORKER_MAX_MEMORY = 5  # exit status: RSS above --max-worker-memory, retired gracefully
_ACCEPT, _WAKEUP = object(), object()
_LOOP_TICK = 1.0  # seconds between heartbeats and idle sweeps (at most; see Worker.sweep_every)
# While stopping, an idle keep-alive connection is closed once idle this long
# (seconds). Requests that arrive before are answered with Connection: close,
# so a busy client (nginx's upstream pool) is never cut mid-request.
_STOPPING_IDLE_CLOSE = 1.0
# A connection closed while its client may still be sending (a refused request,
# an unread body) is half-closed and read to the end for at most this long
# (seconds) before close(2): closing with unread input sends a reset, which can
# destroy the error response before the client reads it (nginx's lingering_close).
_LINGER = 2.0
# With --threads N, a connection just accepted whose first request has not
# arrived yet holds a handler for at most this long (seconds): a client (wrk,
# nginx opening its upstream pool) connects in a burst and writes a moment
# later, and a worker that counted only busy threads took the whole burst
# while the others idled. Short, so a client that connects and sends nothing
# (slowloris) holds a handler for no longer than this.
_FIRST_REQUEST_GRACE = 0.05
# accept(2) out of descriptors (EMFILE: this process, ENFILE: the system; plus
# ENOBUFS/ENOMEM): stop accepting for _ACCEPT_PAUSE seconds, say so at most
# every _SHORTAGE_LOG_EVERY seconds.
_DESCRIPTOR_SHORTAGE = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_ACCEPT_PAUSE = 0.5
_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger: on, 0 seconds
_SHORTAGE_LOG_EVERY = 10.0
# Inline mode: at most this many offload threads wait for slow clients at once;
# more offloaded connections queue for them (each one waits at most --client-timeout).
_OFFLOAD_THREADS = 32
# Inline mode: a request body still arriving, with a Content-Length of at most
# _LOOP_BODY_BUDGET bytes, is read into memory by the loop itself, the bodies so read
# at once adding up to at most that many bytes; another such body waits unread in its
# socket until it fits (the kernel's flow control holds the client, as with a sync
# worker); one not complete, or still waiting for room, after _LOOP_BODY_WAIT seconds
# (at the sweep after) goes on in an offload thread, so slow clients that take the
# room in turn delay the others by two sweeps at most. The app then runs in the loop's
# own thread: no offload thread, whose stack and malloc arena would stay in the
# worker's resident memory (measured with 1 MiB uploads through nginx, make bench's
# upload: 36 MiB per worker when each body went to an offload thread, 26.5 now).
_LOOP_BODY_BUDGET = 1 << 20  # bytes
_LOOP_BODY_WAIT = 1.0  # seconds
# --threads N with epoll (Linux): a connection armed for one readiness event at a time
_ARMED = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "EPOLLONESHOT") else 0


def resident_memory() -> int:
    """This process's resident set size in bytes (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Worker:
    """Serves connections accepted on ``listeners`` until told to stop.

    Signals (gunicorn's): TERM graceful stop (finish in-flight requests, close
    idle connections, exit 0); QUIT immediate exit; INT ignored (the master
    decides).
    """

    def __init__(
        self,
        cfg: Config,
        listeners: list[socket.socket],
        heartbeat: Heartbeat,
        app: WSGIApp | None,
        server: object = None,
    ) -> None:
        self.cfg = cfg
        self.inline = cfg.threads == 1  # the app runs in the loop's thread
        # held by whoever runs the app in inline mode: the loop, or an offload thread
        self.app_lock = threading.Lock()
        self.server = server  # the Arbiter that forked us, for the hooks
        self.listeners = listeners
        self.heartbeat = heartbeat
        self.app = app
        self.alive = True
        self.limits = Limits(
            cfg.limit_request_line,
            cfg.limit_request_fields,
            cfg.limit_request_field_size,
            cfg.limit_request_body,
        )
        # A send or receive waits at most --client-timeout for the client, and less
        # than --timeout: in inline mode the loop cannot beat while it waits.
        self.io_timeout = (
            min(cfg.client_timeout, cfg.timeout / 2) if cfg.timeout else cfg.client_timeout
        ) or None
        self.selector = selectors.DefaultSelector()
        # --threads N on Linux: a connection stays registered while a thread serves it,
        # armed for one event at a time (EPOLLONESHOT, on the selector's own epoll
        # object); the thread that served it re-arms it and says it is free (``freed``),
        # waking the loop only when a request or the listen queue waits for a thread.
        # Per keep-alive request that saves the loop an unregister, a register and a
        # wake-up, each a hand-off of the GIL. None: the loop unregisters each connection
        # it hands to a thread and registers it again when the thread gives it back.
        self.epoll: select.epoll | None = None
        if not self.inline and isinstance(self.selector, selectors.EpollSelector):
            self.epoll = getattr(self.selector, "_selector", None)
        self.serving: set[Connection] = set()  # owned by a thread, or waiting for one (epoll)
        self.freed: deque[None] = deque()  # one per thread freed without the loop (epoll)
        self.exit_status = 0
        self.requests_left = (
            cfg.max_requests + random.randint(0, cfg.max_requests_jitter)
            if cfg.max_requests
            else -1
        )
        # thread id -> (request, time.monotonic() when it started, its connection, whose
        # progressed_at counts too): the heartbeat and the timeout log
        self.in_flight: dict[int, tuple[Request, float, Connection]] = {}
        # the master kills a worker silent for --timeout: beat at least twice as often
        self.sweep_every = min(_LOOP_TICK, cfg.timeout / 2) if cfg.timeout else _LOOP_TICK
        self.busy = 0
        self.pending: deque[Connection] = deque()  # heads ready, waiting for a free thread
        self.returned: deque[tuple[Connection, bool]] = deque()  # from threads, to the loop
        self.accepting = False
        self.fresh: dict[Connection, float] = {}  # accepted, no request yet -> when (threads)
        self.connections: set[Connection] = set()  # open client connections (--worker-connections)
        self.accept_paused_until = 0.0  # monotonic: no accept before (descriptor shortage)
        self.shortage_logged_at = -_SHORTAGE_LOG_EVERY
        # connections for the handler threads (--threads N) or the offload threads
        # (inline mode, started on demand); None before the first
        self.work: queue.SimpleQueue[Connection | None] | None = None
        # inline mode: a response stalled in the loop -> (the rest of it, its start)
        self.stalled: dict[Connection, tuple[Callable[[], Handled], float]] = {}
        # inline mode: bodies the loop reads (_LOOP_BODY_BUDGET) -> (their Content-Length,
        # time.monotonic() when the loop took them), the sum of those lengths, and the
        # connections whose body waits unread for room (unregistered meanwhile), with
        # the time they began to wait, in that order
        self.loading: dict[Connection, tuple[int, float]] = {}
        self.loading_bytes = 0
        self.deferred: deque[tuple[Connection, float]] = deque()
        self.handler_threads: list[threading.Thread] = []
        # (method, status, route) -> the duration histogram's child for those labels
        self._duration_children: dict[tuple[str, int, str], Histogram] = {}

    # -- lifecycle -----------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """Replace the master's handlers, inherited through fork, with the worker's:
        SIGTERM stops gracefully, SIGQUIT at once, SIGABRT (``--timeout``) logs
        what was running and exits, SIGUSR1 reopens the logs."""
        signal.signal(signal.SIGTERM, self._graceful)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGABRT, self._timed_out)
        signal.signal(signal.SIGUSR1, lambda *_: logs.reopen())
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)  # the master's signals (a hang-up reaches the group)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    def run(self) -> None:
        """Load the app, serve, and exit the process (never returns)."""
        if self.app is None:
            try:
                self.app = load_app(self.cfg.app)
            except BaseException:
                logs.error_log.exception("worker failed to load the application %s", self.cfg.app)
                metrics.APP_IMPORT_FAILURES.inc()
                os._exit(WORKER_BOOT_ERROR)
        self.handler = WSGIHandler(
            self.app,
            multithread=self.cfg.threads > 1,
            forwarded_allow_ips=self.cfg.forwarded_allow_ips,
            script_name=self.cfg.script_name,
            observe=self._observe,
            draining=lambda: not self.alive,
            health_path=self.cfg.health_path,
        )
        run_hook(self.cfg, "post_worker_init", self)
        self.heartbeat.beat()
        logs.error_log.info("worker %d serving %s", os.getpid(), self.cfg.app)
        try:
            self._loop()
        except Exception:
            logs.error_log.exception("worker %d crashed", os.getpid())
            os._exit(1)
        logs.error_log.info("worker %d exiting", os.getpid())
        run_hook(self.cfg, "worker_exit", self.server, self)
        os._exit(self.exit_status)

    def _graceful(self, *_: object) -> None:
        self.alive = False

    def _timed_out(self, *_: object) -> None:
        """SIGABRT from the master after --timeout: log what was running, exit."""
        for request, _started, _conn in list(self.in_flight.values()):
            target = request.target.decode("latin-1")
            logs.error_log.error(
                "worker %d timed out serving %s %s", os.getpid(), request.method, target
            )
        os._exit(1)

    # -- the event loop ----------------------------------------------------------
    def _loop(self) -> None:
        cfg = self.cfg
        wake_r, self._wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)  # a signal wakes the loop at once
        self.selector.register(wake_r, selectors.EVENT_READ, _WAKEUP)
        for listener in self.listeners:
            listener.setblocking(False)
        self._set_accepting(True)
        if not self.inline:
            for _ in range(cfg.threads):
                self._start_handler_thread()
        next_sweep = time.monotonic() + self.sweep_every
        while self.alive or self.busy or self.pending or self.deferred or self._has_connections():
            tick = self.sweep_every
            if not self.alive:
                self._set_accepting(False)
                self._close_listeners()
                self._close_idle(time.monotonic(), keep_for=_STOPPING_IDLE_CLOSE)
                tick = 0.1
            elif self.fresh:
                tick = _FIRST_REQUEST_GRACE  # accept again once their hold expires
            elif not self.accepting:  # resume after a pause, or once connections closed
                tick = min(tick, _ACCEPT_PAUSE)
            if self.freed:  # freed after the loop last counted: count them at once
                tick = 0
            for key, _ in self.selector.select(tick):
                if key.data is _ACCEPT:
                    if self._free_handlers():  # an earlier event may have taken the last
                        # a listener: registered with _ACCEPT (a cast would cost a call)
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                elif key.data is _WAKEUP:
                    self._drain_wakeups(wake_r)
                else:
                    self._readable(key.data)
            while self.freed:
                self.freed.popleft()
                self.busy -= 1
            if self.pending and self.busy < cfg.threads and self.alive:
                self._accept_waiting()
            while self.pending and self.busy < cfg.threads:
                self._dispatch(self.pending.popleft())
            now = time.monotonic()
            self._set_accepting(self.alive and self._free_handlers() > 0 and self._can_accept(now))
            if now >= next_sweep:
                self.heartbeat.beat(self._busy_since(now))
                self._check_memory()
                if self.loading or self.deferred:
                    self._offload_slow_bodies(now)
                self._close_idle(now, keep_for=cfg.keep_alive)
                next_sweep = now + self.sweep_every
        self._stop_handler_threads()

    def _busy_since(self, now: float) -> float:
        """When the request in flight that has waited longest last progressed: its
        start, or the last time data moved to or from its client (time.monotonic()),
        else ``now``.

        With --threads N the loop keeps running while a handler thread is stuck in
        the app; beating as of that time lets the master's --timeout kill a worker
        with a hung request (gunicorn's gthread worker keeps beating from its loop,
        so a hung thread is never timed out), and only then: a long download to a
        slow client progresses, a client that makes no progress is cut off after
        --client-timeout.
        """
        return min(
            (
                max(started, conn.progressed_at)
                for _, started, conn in list(self.in_flight.values())
            ),
            default=now,
        )

    def _close_listeners(self) -> None:
        """Close this worker's copies of the listening sockets once it stops for good:
        when the master and every worker have closed theirs, new connections are
        refused at once instead of waiting in a queue nobody will accept from."""
        for listener in self.listeners:
            listener.close()
        self.listeners = []

    def _check_memory(self) -> None:
        """Retire gracefully once RSS exceeds --max-worker-memory (MiB)."""
        limit = self.cfg.max_worker_memory
        if not limit or not self.alive:
            return
        rss = resident_memory()
        if rss > limit * 1024 * 1024:
            logs.error_log.warning(
                "worker %d uses %.0f MiB, over --max-worker-memory %d; retiring it",
                os.getpid(),
                rss / 1048576,
                limit,
            )
            self.alive, self.exit_status = False, WORKER_MAX_MEMORY
            self.heartbeat.retire()

    def _set_accepting(self, accept: bool) -> None:
        if accept == self.accepting:
            return
        for listener in self.listeners:
            if accept:
                self.selector.register(listener, selectors.EVENT_READ, _ACCEPT)
            else:
                self.selector.unregister(listener)
        self.accepting = accept

    def _accept_waiting(self) -> None:
        """Freed threads go first to connections waiting in the listen queue.

        While this worker's own keep-alive connections keep every thread busy
        it does not accept, so connections that arrived then wait in the
        kernel's queue; their requests have waited longest. Without this, a
        worker whose pending requests never run out would leave them there
        for seconds (p99 of 1 s behind nginx, whose upstream connections are
        opened in a burst). Takes at most one connection per free thread.
        """
        while self._free_handlers() > 0:
            if not any(self._accept(listener) for listener in self.listeners):
                return  # the queues are empty

    def _free_handlers(self) -> int:
        """Handler threads neither busy nor held for a connection just accepted
        whose first request is due (see _FIRST_REQUEST_GRACE); inline: the loop."""
        if self.inline:
            return 1
        free = self.cfg.threads - self.busy
        if self.fresh and free > 0:
            expired = time.monotonic() - _FIRST_REQUEST_GRACE
            for conn in [conn for conn, since in self.fresh.items() if since < expired]:
                del self.fresh[conn]
            free -= len(self.fresh)
        return free

    def _can_accept(self, now: float) -> bool:
        """Below --worker-connections, and not pausing after a descriptor shortage."""
        return (
            len(self.connections) < self.cfg.worker_connections and now >= self.accept_paused_until
        )

    def _accept(self, listener: socket.socket) -> bool:
        """Accept one connection and read what it has sent; False if none waited
        (or none could be: at --worker-connections, out of file descriptors)."""
        now = time.monotonic()
        if not self._can_accept(now):
            return False
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False  # another worker took it
        except OSError as exc:
            if exc.errno not in _DESCRIPTOR_SHORTAGE:
                raise
            # EMFILE/ENFILE (accept(2)): the connection stays in the listen queue,
            # for another worker or for later; this one serves what it has.
            self.accept_paused_until = now + _ACCEPT_PAUSE
            if now - self.shortage_logged_at >= _SHORTAGE_LOG_EVERY:
                self.shortage_logged_at = now
                logs.error_log.warning(
                    "worker %d: %s at accept with %d connections open: not accepting for "
                    "%.1f s (raise the open-files limit, or lower --worker-connections)",
                    os.getpid(), errno.errorcode.get(exc.errno, exc.errno),
                    len(self.connections), _ACCEPT_PAUSE,
                )  # fmt: skip
            return False
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = peer[:2]
            local = listener.getsockname()[:2]
        else:
            peer, local = ("", 0), (str(listener.getsockname()), 0)
        conn = Connection(sock, peer, local, self.limits, self.io_timeout)
        if self.inline:  # the app runs in the loop, which cannot beat then
            conn.on_progress = self.heartbeat.beat
            conn.offload = True
        self.connections.add(conn)
        conn.idle_since = time.monotonic()
        self.selector.register(sock, selectors.EVENT_READ, conn)
        if self.epoll is not None:
            self.epoll.modify(sock.fileno(), _ARMED)
        if not self.inline:
            self.fresh[conn] = conn.idle_since
        self._readable(conn)  # its request is usually there already (nginx sends at once)
        return True

    def _readable(self, conn: Connection) -> None:
        if self.serving and conn in self.serving:
            return  # data came while a thread owns it (armed since its accept): the thread's
        if conn.lingering:
            self._discard(conn)
            return
        parser = conn.parser
        between_requests = not parser.head_pending
        try:
            conn.receive(wait=False)
        except (BlockingIOError, InterruptedError):
            return
        except (ClientDisconnected, OSError):
            self._close(conn)
            return
        if not (parser.requests or parser.error is not None or parser.stopped):
            if between_requests:  # --client-header-timeout counts from a head's first byte
                conn.idle_since = time.monotonic()
            return  # the head is still incomplete
        if self.fresh:
            self.fresh.pop(conn, None)
        if self.inline:  # serve now; the connection stays registered
            if parser.requests and not parser.requests[0].complete:
                if not self._load_body(conn):  # its body is still coming
                    self._offload(conn)  # wait for it elsewhere
                return
            if self.loading:
                self._unload(conn)
            if self.busy:  # an offload thread may run the app too
                with self.app_lock:
                    kept = self._serve(conn)
            else:
                kept = self._serve(conn)
            if kept is None:
                self._offload(conn)
            elif kept:
                conn.idle_since = time.monotonic()
            else:
                self._release(conn)
            return
        if self.epoll is not None:  # disarmed by this event (EPOLLONESHOT)
            self.serving.add(conn)
        else:
            self.selector.unregister(conn.sock)  # a thread owns it until it comes back
        if self.busy < self.cfg.threads:
            self._dispatch(conn)
        else:
            self.pending.append(conn)

    def _close(self, conn: Connection) -> None:
        self.fresh.pop(conn, None)
        self.serving.discard(conn)
        if self.loading:
            self._unload(conn)
        self.connections.discard(conn)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _release(self, conn: Connection) -> None:
        """Close a connection we are done with: at once, or lingering if input may follow;
        with a reset when its response was cut short (``conn.aborted``)."""
        if conn.aborted:
            with contextlib.suppress(OSError):  # SO_LINGER 0: close(2) sends a reset
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self._close(conn)
            return
        parser = conn.parser
        unread = parser.error is not None or parser.head_pending
        unread = unread or bool(parser.requests and not parser.requests[0].complete)
        # a request pipelined behind the last one answered (parsed, or still in the
        # socket): closing now would reset the connection (RFC 9112 §9.6)
        unread = unread or len(parser.requests) > 1 or self._has_input(conn)
        if not unread:
            self._close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # our FIN follows the response
        except OSError:
            self._close(conn)
            return
        conn.lingering, conn.idle_since = True, time.monotonic()
        try:
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)
        except KeyError:  # still registered: inline mode, or armed once (epoll)
            if self.epoll is not None:
                with contextlib.suppress(OSError):  # else closed by _close_idle
                    self.epoll.modify(conn.sock.fileno(), _ARMED)

    def _discard(self, conn: Connection) -> None:
        """Read and drop what a lingering connection's client still sends."""
        try:
            if conn.sock.recv(RECV_SIZE, socket.MSG_DONTWAIT):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close(conn)  # the client closed (or reset): done

    def _has_connections(self) -> bool:
        return any(isinstance(key.data, Connection) for key in self.selector.get_map().values())

    def _close_idle(self, now: float, keep_for: float) -> None:
        """Close connections idle for ``keep_for`` seconds, and those whose
        request head is still incomplete after --client-header-timeout (408)."""
        for key in list(self.selector.get_map().values()):
            conn = key.data
            if not isinstance(conn, Connection):
                continue
            waited = now - conn.idle_since
            if conn in self.serving:
                continue  # a thread's, or waiting for one
            if conn.lingering:
                if waited >= min(keep_for, _LINGER):
                    self._close(conn)
            elif conn in self.loading:
                continue  # its body is arriving (_offload_slow_bodies)
            elif conn.parser.head_pending:
                if waited >= self.cfg.client_header_timeout:
                    self._send_quietly(conn, error_response(HttpError(408, "request head timeout")))
                    self._observe_refused(conn, 408)
                    self._release(conn)
            elif waited >= keep_for and not self._has_input(conn):
                self._close(conn)

    @staticmethod
    def _has_input(conn: Connection) -> bool:
        """True if the client sent something not yet read: a request that came while
        the worker was busy is no idle connection (closing it would reset it)."""
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(0))

    @staticmethod
    def _send_quietly(conn: Connection, data: bytes) -> None:
        try:
            conn.sock.send(data, socket.MSG_DONTWAIT)  # small: fits the socket buffer
        except OSError:
            pass

    # -- handing requests to the handler threads ----------------------------------
    def _start_handler_thread(self) -> None:
        """Start one more thread serving the connections the loop dispatches.

        A plain queue and long-lived threads rather than concurrent.futures:
        no Future, no idle semaphore and fewer lock hand-offs per request
        (measured: fewer futex(2) calls per request and less GIL contention
        with 8 threads), and 0.7 MiB less resident memory per worker.
        """
        if self.work is None:
            self.work = queue.SimpleQueue()
        number = len(self.handler_threads)
        thread = threading.Thread(target=self._handler_thread, name=f"app-{number}", daemon=True)
        thread.start()
        self.handler_threads.append(thread)

    def _offload(self, conn: Connection) -> None:
        """Inline mode: hand ``conn`` to an offload thread, which may wait for its client
        (a body still arriving, a response stalled in ``self.stalled``) and gives it back
        to the loop as a handler thread does."""
        self.selector.unregister(conn.sock)
        conn.offload, conn.app_lock, conn.on_progress = False, self.app_lock, None
        if self.busy >= len(self.handler_threads) < _OFFLOAD_THREADS:
            self._start_handler_thread()
        self._dispatch(conn)

    def _load_body(self, conn: Connection) -> bool:
        """Inline mode: whether the loop reads the rest of the body of ``conn``'s first
        request itself (see _LOOP_BODY_BUDGET), now or once there is room for it; False:
        it goes to an offload thread (no Content-Length, too long, 100-continue, an error)."""
        parser = conn.parser
        if parser.error is not None:
            self._unload(conn)
            return False
        if conn in self.loading:
            return True
        request = parser.requests[0]
        length = request.content_length
        if length is None or length > _LOOP_BODY_BUDGET or request.expect_continue:
            return False
        if self.loading_bytes + length > _LOOP_BODY_BUDGET:
            self.selector.unregister(conn.sock)  # its bytes wait in the socket for room
            self.deferred.append((conn, time.monotonic()))
        else:
            self.loading[conn] = (length, time.monotonic())
            self.loading_bytes += length
        return True

    def _unload(self, conn: Connection) -> None:
        """``conn``'s body no longer takes room in the loop: read the bodies waiting for
        that room, in arrival order, while they fit."""
        taken = self.loading.pop(conn, None)
        if taken is None:
            return
        self.loading_bytes -= taken[0]
        now = time.monotonic()
        while self.deferred:
            waiting = self.deferred[0][0]
            length = waiting.parser.requests[0].content_length or 0
            if self.loading_bytes + length > _LOOP_BODY_BUDGET:
                break
            self.deferred.popleft()
            self.loading[waiting] = (length, now)
            self.loading_bytes += length
            self.selector.register(waiting.sock, selectors.EVENT_READ, waiting)

    def _offload_slow_bodies(self, now: float) -> None:
        """Hand the bodies the loop has read, or that have waited for room, for
        _LOOP_BODY_WAIT seconds or more to offload threads."""
        for conn, (_, since) in list(self.loading.items()):
            if now - since >= _LOOP_BODY_WAIT:
                self._unload(conn)
                self._offload(conn)
        while self.deferred and now - self.deferred[0][1] >= _LOOP_BODY_WAIT:
            conn = self.deferred.popleft()[0]
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)  # _offload's to take
            self._offload(conn)

    def _stop_handler_threads(self) -> None:
        """Let every handler thread finish its connection and exit; wait for them."""
        if self.work is None:
            return
        for _ in self.handler_threads:
            self.work.put(None)
        for thread in self.handler_threads:
            thread.join()

    def _dispatch(self, conn: Connection) -> None:
        assert self.work is not None
        self.busy += 1
        self.work.put(conn)

    def _handler_thread(self) -> None:
        """Serve dispatched connections until handed None; each goes back to the loop.
        With epoll, a thread that gave its connection back takes the oldest request
        waiting for a thread itself, unless a connection waits in the listen queue
        (those go first, see _accept_waiting): no hand-off through the loop."""
        assert self.work is not None
        get = self.work.get
        listen_queue = select.poll()  # the listening sockets, to see if one has a connection
        for listener in self.listeners if self.epoll is not None else ():
            listen_queue.register(listener, select.POLLIN)
        conn = get()
        while conn is not None:
            try:
                if self.inline:
                    with self.app_lock:
                        keep = bool(self._serve(conn))
                else:
                    keep = bool(self._serve(conn))
            except Exception:  # a bug of ours: lose the connection, not the thread
                logs.error_log.exception("worker %d: error serving a connection", os.getpid())
                keep = False
            if keep and self.alive and self.epoll is not None:
                if self._rearm(conn):
                    conn = self._take_pending(listen_queue)
                    if conn is None:
                        self._freed()
                        conn = get()
                    continue
                keep = False  # it could not be armed: the loop closes it
            self.returned.append((conn, keep))
            self._wake()
            conn = get()

    def _wake(self) -> None:
        """Wake the loop from a handler thread."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop is waking anyway

    def _rearm(self, conn: Connection) -> bool:
        """In a handler thread (epoll): give ``conn``, kept alive, back to the loop by
        arming it for its next request; False if it could not be armed."""
        conn.idle_since = time.monotonic()
        self.serving.discard(conn)
        try:
            self.epoll.modify(conn.sock.fileno(), _ARMED)  # type: ignore[union-attr]
        except (OSError, ValueError):
            self.serving.add(conn)
            return False
        return True

    def _take_pending(self, listen_queue: select.poll) -> Connection | None:
        """In a handler thread: the oldest connection whose request waits for a thread,
        or None (none, or a connection waits in the listen queue: the loop's turn)."""
        if not self.pending or listen_queue.poll(0):
            return None
        try:
            return self.pending.popleft()
        except IndexError:  # the loop took it meanwhile
            return None

    def _freed(self) -> None:
        """In a handler thread (epoll): count this thread free for the loop; wake the
        loop only if it may be waiting for a free thread (requests pending, or
        accepting stopped). The loop counts ``freed`` after it queues a request or
        stops accepting, and this looks at those after adding to ``freed``: one of
        the two always sees the other."""
        self.freed.append(None)
        if self.pending or not self.accepting:
            self._wake()

    def _drain_wakeups(self, fd: int) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        while self.returned:
            conn, keep = self.returned.popleft()
            self.busy -= 1
            self.serving.discard(conn)
            if self.inline:  # back to the loop's thread
                conn.offload, conn.app_lock, conn.on_progress = True, None, self.heartbeat.beat
            if keep and self.alive:
                conn.idle_since = time.monotonic()
                self.selector.register(conn.sock, selectors.EVENT_READ, conn)
            elif keep:
                self._close(conn)
            else:
                self._release(conn)

    # -- serving -----------------------------------------------------------------
    def _serve(self, conn: Connection) -> bool | None:
        """Answer every request parsed on ``conn`` in order (pipelining).

        Returns True when the connection stays open for more requests; the
        caller closes it otherwise. None (only in the loop's thread, inline
        mode): a response stalled, its rest is in ``self.stalled``, and the
        connection goes to an offload thread, which calls this again.
        """
        parser = conn.parser
        in_loop = conn.offload
        try:
            while parser.requests:
                request = parser.requests[0]
                stalled = self.stalled.pop(conn, None)
                if stalled is None:
                    started = time.monotonic()
                    if in_loop:  # the loop cannot beat while the app runs
                        self.heartbeat.beat(self._busy_since(started) if self.busy else started)
                    keep_alive = self.alive and self.cfg.keep_alive > 0
                    if self.requests_left > 0:
                        self.requests_left -= 1
                        if self.requests_left == 0:  # recycle: this is our last request
                            self.alive, self.exit_status = False, WORKER_MAX_REQUESTS
                            self.heartbeat.retire()
                            keep_alive = False
                    if self.cfg.pre_request is not None:
                        run_hook(self.cfg, "pre_request", self, request)
                else:
                    started = stalled[1]
                thread = threading.get_ident()
                self.in_flight[thread] = (request, started, conn)
                metrics.ACTIVE_REQUESTS.inc()
                try:
                    if stalled is None:
                        keep = self.handler.handle(conn, request, keep_alive)
                    else:
                        keep = stalled[0]()
                    while callable(keep) and not in_loop:
                        keep = keep()
                finally:
                    metrics.ACTIVE_REQUESTS.dec()
                    del self.in_flight[thread]
                if callable(keep):
                    self.stalled[conn] = (keep, started)
                    return None
                if not keep:
                    return False
                parser.requests.popleft()
            if parser.error is not None:
                conn.sock.sendall(error_response(parser.error))
                self._observe_refused(conn, parser.error.status)
                return False
            return not parser.stopped
        except OSError:
            return False

    # -- per-request bookkeeping -------------------------------------------------
    def _observe(
        self, request: Request, response: Response, environ: Environ, duration: float
    ) -> None:
        status = response.status_code
        route = metrics.route_label(environ)
        key = (request.method, status, route)
        histogram = self._duration_children.get(key)
        if histogram is None:
            method = metrics.method_label(request.method)
            histogram = metrics.REQUEST_DURATION.labels(method, str(status), route)
            self._duration_children[key] = histogram
        histogram.observe(duration)
        if request.body_received:
            metrics.REQUEST_BODY_BYTES.inc(request.body_received)
        metrics.RESPONSE_BODY_BYTES.inc(response.body_bytes)
        if logs.access_enabled():
            logs.access_request(
                environ.get("REMOTE_ADDR", ""),
                request.method,
                environ.get("RAW_URI", ""),
                environ.get("SERVER_PROTOCOL", ""),
                status,
                request.body_received,
                response.body_bytes,
                duration,
                environ.get("HTTP_X_REQUEST_ID", ""),
                environ.get("HTTP_REFERER", ""),
                environ.get("HTTP_USER_AGENT", ""),
            )
        if self.cfg.post_request is not None:
            run_hook(self.cfg, "post_request", self, request, environ, response)

    def _observe_refused(self, conn: Connection, status: int) -> None:
        metrics.REQUEST_DURATION.labels(metrics.OTHER, str(status), metrics.OTHER).observe(0.0)
        logs.access({"remote_addr": conn.peer[0], "status": status, "refused": True})

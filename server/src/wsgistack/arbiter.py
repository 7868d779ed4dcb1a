"""The master process ("arbiter"): binds, forks workers, and keeps them right.

It never serves requests. Signal handlers only queue the signal and wake the
loop; the loop then reaps children, kills workers whose heartbeat is older
than ``--timeout``, and brings the worker count to its target. Signals:
TERM graceful stop, QUIT immediate stop, HUP reload (new workers with freshly
imported code, then the old ones retire gracefully), TTIN/TTOU one worker
more/less, USR1 reopen log files, as in gunicorn; INT is a graceful stop too,
where gunicorn's is quick: Ctrl-C in a terminal lets in-flight requests finish.

An app that fails to import (a worker exits WORKER_BOOT_ERROR) is never
retried in the same generation. At start it stops the master (exit 3); on a
reload the new generation is dropped and the old workers keep serving with the
old configuration until the next HUP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import _hotpath as hotpath
from . import config as config_module
from . import logs
from ._types import WSGIApp
from .config import Config
from .heartbeat import HeartbeatTable
from .hooks import run_hook
from .metrics import files as metric_files
from .metrics import instruments as metrics
from .reloader import watch_for_changes
from .sockets import bind
from .worker import WORKER_BOOT_ERROR, WORKER_MAX_MEMORY, WORKER_MAX_REQUESTS, Worker

log = logs.error_log
MAX_WORKERS = 1024  # heartbeat slots
KILL_GRACE = 2.0  # seconds between SIGABRT and SIGKILL for a timed-out worker
# The signals the master handles (queued, then acted on by its loop).
_HANDLED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGCHLD,
)


@dataclass
class WorkerInfo:
    """What the master knows of one worker: its heartbeat ``slot``, its
    ``generation`` (bumped by each SIGHUP), when it was spawned and when it was
    sent SIGABRT (time.monotonic() seconds; 0.0: never), and whether it is
    leaving (``retiring``) or was sent SIGKILL (``killed``)."""

    slot: int
    generation: int
    spawned_at: float
    retiring: bool = False
    aborted_at: float = 0.0
    killed: bool = False


class Arbiter:
    """Runs the master loop; ``run()`` returns the process exit status.

    ``reload_config`` builds the configuration again on SIGHUP (ConfigError
    keeps the current one); ``app`` is the application imported in the master
    (``--preload``), None for workers that import it themselves.
    """

    def __init__(
        self, cfg: Config, reload_config: Callable[[], Config], app: WSGIApp | None = None
    ) -> None:
        self.cfg = cfg
        self.reload_config = reload_config
        self.app = app
        self.target = cfg.workers
        self.generation = 0  # the generation being started or serving
        self.newest_generation = 0  # numbers are never reused, even after a failed reload
        self.booted_generation = -1  # the newest generation a worker has booted in
        # What a reload whose app fails to import falls back to: generation, config, target.
        self.fallback: tuple[int, Config, int] = (0, cfg, cfg.workers)
        self.unbootable = -1  # a booted generation whose replacement workers fail to import
        self.workers: dict[int, WorkerInfo] = {}
        self.signals: deque[int] = deque()
        self.listeners: list[socket.socket] = []
        self.heartbeats = HeartbeatTable(MAX_WORKERS)
        self.exit_status: int | None = None

    # -- setup ---------------------------------------------------------------
    def run(self) -> int:
        """Bind, spawn the workers and manage them until stopped.

        Returns the exit status: 0 after a stop by signal, 3 (WORKER_BOOT_ERROR)
        when the app cannot be imported and nothing serves. Raises OSError when
        an address cannot be bound.
        """
        cfg = self.cfg
        run_hook(cfg, "on_starting", self)
        self.listeners = [
            bind(address, cfg.backlog, reuse_port=cfg.reuse_port, chmod_socket=cfg.chmod_socket)
            for address in cfg.bind
        ]
        log.info(
            "master %d listening on %s, hot path: %s",
            os.getpid(),
            ", ".join(self.cfg.bind),
            hotpath.mode(),  # compiled | python (WSGISTACK_NO_EXTENSIONS=1)
        )
        run_hook(cfg, "when_ready", self)
        if cfg.reload:
            watch_for_changes(cfg.reload_extra_files)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w)
        for sig in _HANDLED:
            signal.signal(sig, self._queue_signal)
        try:
            return self._loop()
        finally:
            run_hook(self.cfg, "on_exit", self)
            for listener in self.listeners:
                listener.close()
            for address in cfg.bind:
                if address.startswith("unix:"):
                    with contextlib.suppress(OSError):
                        os.unlink(address[len("unix:") :])

    def _queue_signal(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)

    # -- the loop --------------------------------------------------------------
    def _loop(self) -> int:
        while True:
            self._manage_workers()
            # Poll fast while a generation's first worker boots, so the rest follow soon.
            self._wait(1.0 if self.booted_generation == self.generation else 0.05)
            while self.signals:
                signum = self.signals.popleft()
                if signum in (signal.SIGTERM, signal.SIGINT):
                    return self._stop(graceful=True, reason=signal.Signals(signum).name)
                if signum == signal.SIGQUIT:
                    return self._stop(graceful=False, reason="SIGQUIT")
                if signum == signal.SIGHUP:
                    self._reload()
                elif signum == signal.SIGTTIN:
                    self.target += 1
                    log.info("SIGTTIN: %d workers", self.target)
                elif signum == signal.SIGTTOU:
                    self.target = max(1, self.target - 1)
                    log.info("SIGTTOU: %d workers", self.target)
                elif signum == signal.SIGUSR1:
                    logs.reopen()
                    log.info("SIGUSR1: log files reopened")  # also creates the new error log
                    for pid in self.workers:
                        self._kill(pid, signal.SIGUSR1)
            self._reap()
            if self.exit_status is not None:
                self._stop(graceful=False, reason="a worker failed to boot")
                return self.exit_status
            self._murder_timed_out()

    def _wait(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass

    # -- workers -----------------------------------------------------------------
    def _current(self) -> list[int]:
        return [
            pid
            for pid, w in self.workers.items()
            if w.generation == self.generation and not w.retiring
        ]

    def _booted(self, pid: int) -> bool:
        return self.heartbeats.last_beat(self.workers[pid].slot) > 0.0

    def _manage_workers(self) -> None:
        for info in self.workers.values():
            if not info.retiring and self.heartbeats.retiring(info.slot):
                info.retiring = True  # it leaves on its own: start its replacement now
        current = self._current()
        booted = [pid for pid in current if self._booted(pid)]
        if booted:
            self.booted_generation = self.generation
        # The first worker of a generation (at start, after a reload) boots
        # alone: if the app cannot be imported, its traceback is printed once
        # and the generation is given up (_boot_failed). Once one has booted,
        # replacements start at once.
        if self.booted_generation != self.generation:
            if not current:
                self._spawn()
        else:
            if self.generation != self.unbootable:  # a failed import is not retried
                for _ in range(self.target - len(current)):
                    self._spawn()
            for pid in sorted(current, key=lambda p: self.workers[p].spawned_at)[self.target :]:
                self._retire(pid)
            if len(booted) >= self.target:  # a reload's new generation is up: retire the old
                for pid, w in list(self.workers.items()):
                    if w.generation != self.generation and not w.retiring:
                        self._retire(pid)
        metrics.WORKERS.set(len(self._current()))

    def _spawn(self) -> None:
        used = {w.slot for w in self.workers.values()}
        slot = next(i for i in range(MAX_WORKERS) if i not in used)
        heartbeat = self.heartbeats.slot(slot)
        # A signal sent to the new worker before it has its own handlers would
        # run the master's (inherited) and be lost: it waits, blocked, instead.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # the worker
            metric_files.set_identity(metric_files.worker_identity(slot))
            status = 1
            try:
                signal.set_wakeup_fd(-1)
                os.close(self._wake_r)
                os.close(self._wake_w)
                worker = Worker(self.cfg, self.listeners, heartbeat, self.app, server=self)
                worker.install_signal_handlers()
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what waited arrives now
                run_hook(self.cfg, "post_fork", self, worker)
                worker.run()
            except BaseException:
                log.exception("worker failed")
            finally:
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.workers[pid] = WorkerInfo(slot, self.generation, time.monotonic())
        log.info("spawned worker %d (generation %d)", pid, self.generation)

    def _retire(self, pid: int) -> None:
        self.workers[pid].retiring = True
        self._kill(pid, signal.SIGTERM)

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            info = self.workers.pop(pid, None)
            if info is None:
                continue
            metrics.mark_worker_dead(metric_files.worker_identity(info.slot))
            if self.heartbeats.last_beat(info.slot) > 0.0:  # it booted, maybe unseen
                self.booted_generation = max(self.booted_generation, info.generation)
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR:
                self._boot_failed(pid, info.generation)
            elif info.aborted_at:
                metrics.WORKER_RESTARTS.labels("timeout").inc()
            elif code == WORKER_MAX_REQUESTS:
                log.info("worker %d served its max-requests; replacing it", pid)
                metrics.WORKER_RESTARTS.labels("max-requests").inc()
            elif code == WORKER_MAX_MEMORY:
                metrics.WORKER_RESTARTS.labels("memory").inc()
            elif not info.retiring:
                how = f"signal {-code}" if code < 0 else f"status {code}"
                log.warning("worker %d exited unexpectedly (%s); replacing it", pid, how)
                metrics.WORKER_RESTARTS.labels("exit").inc()
            if not self.workers and self.generation == self.unbootable:
                log.error("no worker left and the app fails to import; stopping")
                self.exit_status = WORKER_BOOT_ERROR

    def _boot_failed(self, pid: int, generation: int) -> None:
        """A worker of ``generation`` could not import the app (it logged the traceback).

        Nothing serving and the current generation failing: the master stops
        (exit 3, as gunicorn). A reload's new generation failing while older
        workers serve: it is dropped and the last generation that booted (its
        config, its worker count) stays. A replacement failing in a generation
        that booted: that generation gets no more workers until the next HUP.
        """
        serving = any(self._booted(p) for p in self.workers)
        if generation != self.generation:
            log.error(
                "worker %d of superseded generation %d failed to boot (traceback above)",
                pid,
                generation,
            )
        elif not serving:
            log.error("worker %d failed to boot (traceback above); stopping", pid)
            self.exit_status = WORKER_BOOT_ERROR
        elif self.booted_generation != self.generation:
            self.generation, self.cfg, self.target = self.fallback
            self.booted_generation = self.generation
            log.error(
                "SIGHUP: reload abandoned: worker %d failed to boot (traceback above); "
                "generation %d keeps serving with its configuration until the next SIGHUP",
                pid,
                self.generation,
            )
            cfg = self.cfg
            logs.setup(cfg.errorlog, cfg.log_level, cfg.access_logfile, cfg.access_log_style)
        else:
            self.unbootable = generation
            log.error(
                "worker %d failed to boot (traceback above); not replacing it until the next "
                "SIGHUP (workers left: %d)",
                pid,
                len(self.workers),
            )

    def _murder_timed_out(self) -> None:
        if not self.cfg.timeout:
            return
        now = time.monotonic()
        for pid, info in list(self.workers.items()):
            if info.aborted_at:
                if now - info.aborted_at > KILL_GRACE and not info.killed:
                    log.critical("worker %d ignored SIGABRT; sending SIGKILL", pid)
                    info.killed = True
                    self._kill(pid, signal.SIGKILL)
                continue
            last = self.heartbeats.last_beat(info.slot) or info.spawned_at
            if now - last > self.cfg.timeout:
                log.critical("WORKER TIMEOUT (pid %d): silent for %.0f s", pid, now - last)
                info.aborted_at = now
                self._kill(pid, signal.SIGABRT)

    # -- reload and stop -----------------------------------------------------------
    def _reload(self) -> None:
        try:
            cfg = self.reload_config()
        except config_module.ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded: %s", exc)
            return
        if cfg.bind != self.cfg.bind:
            log.warning("SIGHUP: bind changes need a restart; keeping %s", self.cfg.bind)
            cfg = dataclasses.replace(cfg, bind=self.cfg.bind)
        logs.setup(cfg.errorlog, cfg.log_level, cfg.access_logfile, cfg.access_log_style)
        log.info("SIGHUP: reloading; %s", cfg.describe())
        if self.booted_generation == self.generation:
            self.fallback = (self.generation, self.cfg, self.target)
        self.cfg = cfg
        self.target = cfg.workers
        self.newest_generation += 1
        self.generation = self.newest_generation

    def _stop(self, graceful: bool, reason: str) -> int:
        log.info("stopping (%s, %s)", reason, "graceful" if graceful else "immediate")
        for listener in self.listeners:
            listener.close()
        for pid, info in self.workers.items():
            info.retiring = True
            self._kill(pid, signal.SIGTERM if graceful else signal.SIGQUIT)
        deadline = time.monotonic() + (self.cfg.graceful_timeout if graceful else 2.0)
        while self.workers and time.monotonic() < deadline:
            self._reap()
            self._wait(0.1)
        for pid in list(self.workers):
            log.warning("worker %d still running after the graceful timeout; killing it", pid)
            self._kill(pid, signal.SIGKILL)
        while self.workers:
            self._reap()
            self._wait(0.05)
        metrics.WORKERS.set(0)
        log.info("master %d stopped", os.getpid())
        sys.stdout.flush()
        return 0

"""The prometheus-client multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``).

Kept apart from ``server.metrics`` on purpose: the directory must be prepared
and this process named before any instrument exists, and importing
``server.metrics`` creates them.

File names. prometheus-client names each process's files after its pid
(``counter_1234.db``), and ``mark_process_dead`` only deletes a dead pid's
live-gauge files: its counter and histogram files stay for ever, since their
totals still count. After thousands of worker recycles (``--max-requests``)
the exporter would merge thousands of files on every scrape. So our processes
name their files after a stable *identity* instead (``values.MultiProcessValue``
with our ``process_identifier``): the master is ``master``, a worker is
``worker<slot>`` after its heartbeat slot. A slot belongs to one live worker at
a time, and a replacement continues its slot's counter files (prometheus-client
reads the stored value back when it opens a file), so totals stay exact and the
directory holds a few files per slot, however many workers have come and gone.
A process we did not name (a gunicorn worker, a child the app forks) keeps the
library's pid naming.

Updates. prometheus-client's multiprocess value checks the process identity on
every update (to reopen its files after a fork): a fifth of an instrument
update's cost, and a request makes five. ``install_identities`` installs a
subclass that runs that check only on a value's first update after the
identity may have changed (``set_identity``, a fork); the update itself stays
the library's (the same fields, ``MmapedDict.write_value``).
"""

from __future__ import annotations

import glob
import os
import threading
from typing import Any

_identity: tuple[int, str] | None = None  # (pid that set it, name)
# This process's pid, renewed in every child os.fork() makes: prometheus-client
# asks for the identity on every metric update, and os.getpid() is a system call.
_pid = os.getpid()


# Replaced whenever process_identity() may have changed (set_identity, fork): a value
# whose files were opened under an older one goes through prometheus-client's check.
_generation = object()


def _after_fork_in_child() -> None:
    global _pid, _generation
    _pid = os.getpid()
    _generation = object()


os.register_at_fork(after_in_child=_after_fork_in_child)


def process_identity() -> str:
    """This process's metric-file name: what ``set_identity`` set here, else the pid.

    A child forked after ``set_identity`` is another process and gets its pid,
    so two live processes never share a file.
    """
    if _identity is not None and _identity[0] == _pid:
        return _identity[1]
    return str(_pid)


def set_identity(name: str) -> None:
    """Name this process's metric files ``<type>_<name>.db`` from now on.

    ``name`` must not contain "_" (prometheus-client splits file names on it)
    and must be held by one live process at a time. Raises ValueError.
    """
    global _identity, _generation
    if not name or "_" in name:
        raise ValueError(f"metrics identity must be non-empty, without '_': {name!r}")
    _identity = (_pid, name)
    _generation = object()


def worker_identity(slot: int) -> str:
    """The identity of the worker in heartbeat slot ``slot``."""
    return f"worker{slot}"


def install_identities() -> None:
    """Make prometheus-client name files after ``process_identity()``.

    Must run before the first instrument is created (``server.metrics`` calls
    it at import); does nothing without ``PROMETHEUS_MULTIPROC_DIR``.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import values

        values.ValueClass = _value_class(
            values.MultiProcessValue(process_identifier=process_identity)
        )


def _value_class(library: type) -> type:
    """prometheus-client's multiprocess value ``library`` with a cheaper ``inc``.

    The library's inc() asks for the process identity on every update, to
    reopen every file after a fork; here that check runs only on a value's first
    update after the identity may have changed (``_generation``), and the
    update itself is the library's: add, then write value and timestamp into
    the same mmap'ed file. Every method runs under one lock (the app's threads
    share the values), outside the library's own.
    """
    lock = threading.Lock()

    class MmapedValue(library):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            with lock:
                super().__init__(*args, **kwargs)
                self._generation = _generation

        def inc(self, amount: float) -> None:
            with lock:
                if self._generation is not _generation:
                    super().inc(amount)  # checks the identity, reopens the files if new
                    self._generation = _generation
                    return
                self._value += amount
                self._timestamp = 0.0
                self._file.write_value(self._key, self._value, 0.0)

        def set(self, value: float, timestamp: float | None = None) -> None:
            with lock:
                super().set(value, timestamp)

        def get(self) -> float:
            with lock:
                return super().get()

    return MmapedValue


def wipe_dir() -> None:
    """Prepare the directory at server start: create it, drop every gauge file.

    Gauges describe processes that no longer exist (the last run's worker count,
    requests in flight); counters and histograms are kept, so a restarted
    server continues its totals instead of resetting them (Prometheus reads
    either correctly). Does nothing when the variable is unset.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "gauge_*.db")):
            os.unlink(path)

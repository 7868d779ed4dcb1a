"""The prometheus-client multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``).

Kept apart from ``wsgistack.metrics.instruments`` on purpose: the directory must be prepared
and this process named before any instrument exists, and importing
``wsgistack.metrics.instruments`` creates them.

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

Updates: see ``wsgistack.metrics._fastvalue``, the one module that touches
prometheus-client's private fields.
"""

from __future__ import annotations

import glob
import os

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

    Must run before the first instrument is created (``wsgistack.metrics.instruments`` calls
    it at import); does nothing without ``PROMETHEUS_MULTIPROC_DIR``.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import values

        from ._fastvalue import fast_value_class

        values.ValueClass = fast_value_class(
            values.MultiProcessValue(process_identifier=process_identity), lambda: _generation
        )


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

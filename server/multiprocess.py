"""The prometheus-client multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``).

Kept apart from ``server.metrics`` on purpose: wiping must happen before any
instrument exists, and importing ``server.metrics`` creates them.

Every worker writes its own files (``counter_<pid>.db``, ``histogram_<pid>.db``,
``gauge_live*_<pid>.db``). When a worker dies, its live gauges are dropped
(prometheus-client's ``mark_process_dead``) and its counters and histograms
are added into ``counter_archive.db`` and ``histogram_archive.db``, then its
files are removed: the totals stay exact and the directory does not grow with
every recycled worker. The master archives under an exclusive ``flock`` on
``archive.lock`` and the exporter collects under a shared one, so a scrape
never sees a worker's values twice or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from collections.abc import Iterator

ARCHIVED_TYPES = ("counter", "histogram")  # summed across processes, so they can be merged
LOCK_NAME = "archive.lock"


def directory() -> str | None:
    """The metrics directory, or None when metrics are per-process only."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def wipe_dir() -> None:
    """Remove the last run's metric files (prometheus-client requires it at start).

    Creates the directory if missing; does nothing when the variable is unset.
    """
    path = directory()
    if path:
        os.makedirs(path, exist_ok=True)
        for name in glob.glob(os.path.join(path, "*.db")):
            os.unlink(name)


@contextlib.contextmanager
def locked(path: str, *, exclusive: bool) -> Iterator[None]:
    """Hold ``archive.lock`` in ``path``: exclusive to archive, shared to collect."""
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def archive_dead_process(pid: int, path: str) -> None:
    """Fold the dead process ``pid``'s counters and histograms into the archive
    files of ``path`` and remove all of its files (live gauges included)."""
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    with locked(path, exclusive=True):
        multiprocess.mark_process_dead(pid, path)
        for kind in ARCHIVED_TYPES:
            dead = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(dead):
                    total, last = archive.read_value(key)
                    archive.write_value(key, total + value, max(last, timestamp))
            finally:
                archive.close()
            os.unlink(dead)

"""Worker heartbeats in shared memory: no disk, no syscalls per beat.

The master maps one anonymous shared page before forking; each worker owns a
slot of two doubles: the monotonic clock (seconds) of its last beat, and the
time it started retiring on its own (0.0 if it isn't), so the master can start
its replacement at once. gunicorn's heartbeat is a file's ctime under /tmp,
which on Docker's overlay filesystem causes spurious WORKER TIMEOUTs; a shared
mapping has no such cost.
"""

from __future__ import annotations

import mmap
import struct
import time

_SLOT = struct.Struct("dd")  # last beat, retiring since


class HeartbeatTable:
    """``size`` slots; times are time.monotonic() seconds, 0.0 meaning never."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._map = mmap.mmap(-1, max(_SLOT.size * size, mmap.PAGESIZE))

    def slot(self, index: int) -> Heartbeat:
        """The handle a worker in slot ``index`` beats with; resets the slot."""
        _SLOT.pack_into(self._map, index * _SLOT.size, 0.0, 0.0)
        return Heartbeat(self._map, index * _SLOT.size)

    def last_beat(self, index: int) -> float:
        """Monotonic time (seconds) of the slot's last beat, 0.0 if none yet."""
        last: float = _SLOT.unpack_from(self._map, index * _SLOT.size)[0]
        return last

    def retiring(self, index: int) -> bool:
        """True once the worker in the slot has decided to exit (e.g. max-requests)."""
        since: float = _SLOT.unpack_from(self._map, index * _SLOT.size)[1]
        return since > 0.0


class Heartbeat:
    """One worker's slot in the shared table: ``offset`` is its byte offset in ``shared``."""

    __slots__ = ("_map", "_offset")

    def __init__(self, shared: mmap.mmap, offset: int) -> None:
        self._map = shared
        self._offset = offset

    def beat(self, at: float | None = None) -> None:
        """Record a beat as of ``at`` (time.monotonic() seconds; default now). A
        worker with a request in flight beats as of that request's start, so the
        master's --timeout counts from there."""
        struct.pack_into("d", self._map, self._offset, time.monotonic() if at is None else at)

    def retire(self) -> None:
        """Tell the master this worker is leaving, so it starts a replacement now."""
        struct.pack_into("d", self._map, self._offset + 8, time.monotonic())

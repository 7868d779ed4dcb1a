"""Worker heartbeats in shared memory: no disk, no syscalls per beat.

The master maps one anonymous shared page before forking; each worker owns a
slot and writes the monotonic clock (seconds) into it. gunicorn's heartbeat is a
file's ctime under /tmp, which on Docker's overlay filesystem causes spurious
WORKER TIMEOUTs; a shared mapping has no such cost.
"""

from __future__ import annotations

import mmap
import struct
import time

_SLOT = struct.Struct("d")


class HeartbeatTable:
    """``size`` slots of float seconds (time.monotonic), 0.0 meaning never beaten."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._map = mmap.mmap(-1, max(_SLOT.size * size, mmap.PAGESIZE))

    def slot(self, index: int) -> Heartbeat:
        """The handle a worker in slot ``index`` beats with; resets the slot."""
        _SLOT.pack_into(self._map, index * _SLOT.size, 0.0)
        return Heartbeat(self._map, index * _SLOT.size)

    def last_beat(self, index: int) -> float:
        """Monotonic time of the slot's last beat, 0.0 if none yet."""
        return _SLOT.unpack_from(self._map, index * _SLOT.size)[0]


class Heartbeat:
    """One worker's slot."""

    __slots__ = ("_map", "_offset")

    def __init__(self, shared: mmap.mmap, offset: int) -> None:
        self._map = shared
        self._offset = offset

    def beat(self) -> None:
        _SLOT.pack_into(self._map, self._offset, time.monotonic())

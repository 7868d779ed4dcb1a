"""server.heartbeat: shared-memory heartbeats seen across fork()."""

from __future__ import annotations

import os
import time

from wsgistack.heartbeat import HeartbeatTable


def test_slot_starts_silent_and_beats():
    table = HeartbeatTable(4)
    heartbeat = table.slot(2)
    assert table.last_beat(2) == 0.0 and not table.retiring(2)
    before = time.monotonic()
    heartbeat.beat()
    assert before <= table.last_beat(2) <= time.monotonic()
    assert table.last_beat(1) == 0.0  # slots are independent


def test_beats_and_retirement_from_a_child_process_are_seen():
    table = HeartbeatTable(2)
    heartbeat = table.slot(1)
    pid = os.fork()
    if pid == 0:  # the "worker"
        heartbeat.beat()
        heartbeat.retire()
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.last_beat(1) > 0.0
    assert table.retiring(1)


def test_reusing_a_slot_resets_it():
    table = HeartbeatTable(1)
    heartbeat = table.slot(0)
    heartbeat.beat()
    heartbeat.retire()
    table.slot(0)
    assert table.last_beat(0) == 0.0 and not table.retiring(0)

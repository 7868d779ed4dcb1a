"""What the engines' processes use, from Linux /proc: CPU seconds, and peak RSS per
worker sampled in a thread."""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Sequence
from pathlib import Path

RSS_SAMPLE_INTERVAL = 0.2  # seconds between /proc samples


def children(pids: Sequence[int]) -> list[int]:
    """Processes whose parent is one of ``pids`` (from /proc)."""
    parents = set(pids)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and int(fields[1]) in parents:  # the ppid, field 4
            found.append(int(entry))
    return found


def tree_cpu_seconds(mains: Sequence[int]) -> float:
    """User + system CPU seconds (Linux /proc, proc(5) stat fields 14 to 17) that
    ``mains`` and their children have used so far: each main's own and its reaped
    children's, plus each living child's own. A worker that exits and is reaped
    between two calls moves from the second sum to the first, so it is neither
    lost nor counted twice, and its replacement counts from its start. A main
    gone meanwhile counts 0."""
    ticks = 0
    for pid in mains:
        fields = _stat_fields(pid)
        if fields:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    for pid in children(mains):
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after "pid (comm)" (the state is [0]), or [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's reaped children so far (getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples the RSS of the worker processes (children of ``mains``, or ``mains``
    themselves when they have none) in a thread; ``peak`` is the largest per pid (KiB)."""

    def __init__(self, mains: Sequence[int]) -> None:
        self.mains = list(mains)
        self.peak: dict[int, int] = {}
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def workers(self) -> list[int]:
        return children(self.mains) or self.mains

    def _sample(self) -> None:
        pids = self.workers()
        total = sum(filter(None, (rss_kib(p) for p in self.mains if p not in pids)))
        for pid in pids:
            value = rss_kib(pid)
            if value is not None:
                self.peak[pid] = max(self.peak.get(pid, 0), value)
                total += value
        self.peak_total = max(self.peak_total, total)

    def _loop(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(RSS_SAMPLE_INTERVAL * 10)
        self._sample()

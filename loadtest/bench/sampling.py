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
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])  # field 4, after "pid (comm) state"
        if ppid in parents:
            found.append(int(entry))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time (seconds) ``pids`` have used so far (Linux /proc;
    a process gone meanwhile counts 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


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

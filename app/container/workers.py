"""The app container's default WEB_CONCURRENCY: 2 x CPUs + 1 worker processes,
no more than the memory limit holds at WORKER_MEMORY each.

    python /etc/supervisor/workers.py [CGROUP_ROOT]

prints the number on stdout and how it was reached on stderr (one line, the
container's log); start.sh runs it when WEB_CONCURRENCY is empty. CPUs: the
container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` over
``cpu.cfs_period_us``), rounded up, else the CPUs this process may run on.
Memory: cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``. CGROUP_ROOT
(default /sys/fs/cgroup) is for the tests' fake cgroup files.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

# What one worker may use: the demo app's workers hold about 40 MiB; the rest
# is room for the app's own growth, the master, the exporter and supervisord.
WORKER_MEMORY = 128 * 2**20


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpus(root: Path, available: int) -> tuple[int, str]:
    """The CPUs this container may use, and where that came from."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        source = f"cpu.max {v2}"
    else:
        quota = _read(root / "cpu" / "cpu.cfs_quota_us") or "-1"
        period = _read(root / "cpu" / "cpu.cfs_period_us") or ""
        source = f"cpu.cfs_quota_us {quota} over cpu.cfs_period_us {period}"
    if quota in ("max", "-1") or not period:
        return available, f"{available} CPUs available, no CPU quota"
    return min(available, max(1, math.ceil(int(quota) / int(period)))), source


def memory(root: Path) -> int | None:
    """The container's memory limit in bytes; None: no limit (v2 ``max``, v1's
    largest page count, 2**63 - 4096 with 4 KiB pages)."""
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        value = _read(root / name)
        if value is not None:
            return None if value == "max" or int(value) >= 2**62 else int(value)
    return None


def workers(root: Path, available: int) -> tuple[int, str]:
    """WEB_CONCURRENCY's default, and one line saying why."""
    count, cpu_source = cpus(root, available)
    wanted = 2 * count + 1
    why = f"2 x {count} CPUs + 1 ({cpu_source})"
    limit = memory(root)
    if limit is not None:
        fits = max(1, limit // WORKER_MEMORY)
        why += (
            f", memory limit {limit // 2**20} MiB holds {fits} at {WORKER_MEMORY // 2**20} MiB each"
        )
        wanted = min(wanted, fits)
    return wanted, why


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "/sys/fs/cgroup")
    count, why = workers(root, len(os.sched_getaffinity(0)))
    print(f"workers: WEB_CONCURRENCY={count}: {why}", file=sys.stderr)
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

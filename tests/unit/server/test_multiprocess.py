"""server.multiprocess: dead workers' metric files are folded into archive files,
so totals stay exact and the directory does not grow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from server.multiprocess import archive_dead_process

WORKER = """
import os
from prometheus_client import Counter, Gauge, Histogram
requests = Counter("requests", "r", ["code"])
duration = Histogram("duration_seconds", "d", buckets=(0.1, 1.0))
active = Gauge("active", "a", multiprocess_mode="livesum")
for i in range({n}):
    requests.labels("200" if i % 3 else "500").inc()
    duration.observe(i / 10)
active.inc()
print(os.getpid())
"""


def run_worker(path: Path, n: int) -> int:
    result = subprocess.run(
        [sys.executable, "-c", WORKER.format(n=n)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


def totals(path: Path) -> dict:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def test_dead_workers_are_archived_with_exact_totals(tmp_path):
    pids = [run_worker(tmp_path, n) for n in (7, 11, 5)]
    before = totals(tmp_path)
    assert before[("requests_total", (("code", "500"),))] == 3 + 4 + 2
    for pid in pids[:2]:
        archive_dead_process(pid, str(tmp_path))
    after = totals(tmp_path)
    active = ("active", ())
    assert after.pop(active) == 1.0  # only the live worker's gauge is left
    before.pop(active)
    assert after == before  # counters and histogram buckets, sums and counts unchanged
    names = sorted(p.name for p in tmp_path.glob("*.db"))
    assert names == sorted(
        [
            "counter_archive.db",
            "histogram_archive.db",
            f"counter_{pids[2]}.db",
            f"histogram_{pids[2]}.db",
            f"gauge_livesum_{pids[2]}.db",
        ]
    )


def test_archive_grows_by_keys_not_by_workers(tmp_path):
    for _ in range(5):
        archive_dead_process(run_worker(tmp_path, 4), str(tmp_path))
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert totals(tmp_path)[("requests_total", (("code", "200"),))] == 5 * 2


def test_archiving_a_process_without_files_is_harmless(tmp_path):
    archive_dead_process(999_999, str(tmp_path))
    assert list(tmp_path.glob("*.db")) == []

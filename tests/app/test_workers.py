"""app/container/workers.py: WEB_CONCURRENCY's default from the container's
cgroup files (faked here), 2 x CPUs + 1 capped by the memory limit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, load_script

workers = load_script("app/container/workers.py", "container_workers")
MiB = 2**20


def cgroup(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "available", "expected"),
    [
        # cgroup v2: compose's cpus "2" and memory 1g -> 5 (1 GiB holds 8)
        ({"cpu.max": "200000 100000", "memory.max": str(1024 * MiB)}, 8, 5),
        # a fractional quota counts as a whole CPU
        ({"cpu.max": "50000 100000", "memory.max": "max"}, 8, 3),
        ({"cpu.max": "150000 100000", "memory.max": "max"}, 8, 5),
        # no quota: the CPUs this process may run on
        ({"cpu.max": "max 100000", "memory.max": "max"}, 4, 9),
        # a quota above the CPUs there are: the CPUs
        ({"cpu.max": "800000 100000", "memory.max": "max"}, 2, 5),
        # the memory limit caps it: 256 MiB holds 2 workers, 100 MiB still 1
        ({"cpu.max": "400000 100000", "memory.max": str(256 * MiB)}, 8, 2),
        ({"cpu.max": "max 100000", "memory.max": str(100 * MiB)}, 8, 1),
        # cgroup v1, with and without a quota and a limit
        (
            {
                "cpu/cpu.cfs_quota_us": "100000",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": str(1024 * MiB),
            },
            8,
            3,
        ),
        (
            {
                "cpu/cpu.cfs_quota_us": "-1",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": "9223372036854771712",
            },
            2,
            5,
        ),
        (
            {
                "cpu/cpu.cfs_quota_us": "300000",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": str(384 * MiB),
            },
            8,
            3,
        ),
        # no cgroup files at all
        ({}, 3, 7),
    ],
)
def test_default_from_the_cgroup_files(tmp_path, files, available, expected):
    count, _ = workers.workers(cgroup(tmp_path, files), available)
    assert count == expected


def test_v1_without_a_limit_caps_nothing(tmp_path):
    root = cgroup(tmp_path, {"memory/memory.limit_in_bytes": "9223372036854771712"})
    count, why = workers.workers(root, 2)
    assert count == 5 and why == "2 x 2 CPUs + 1 (2 CPUs available, no CPU quota)"


def test_the_line_says_why(tmp_path):
    root = cgroup(tmp_path, {"cpu.max": "100000 100000", "memory.max": str(256 * MiB)})
    result = subprocess.run(
        [sys.executable, ROOT / "app/container/workers.py", root],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == "2\n"
    assert result.stderr == (
        "workers: WEB_CONCURRENCY=2: 2 x 1 CPUs + 1 (cpu.max 100000 100000),"
        " memory limit 256 MiB holds 2 at 128 MiB each\n"
    )

"""The machine a measurement ran on, for the reports of ``make load`` and ``make bench``.

Figures from one machine do not carry to another (the docs' Benchmark page shows
a ratio that flipped between two machines of the same kind), so every report
prints where it was measured: the CPU, how many this process may use, the
kernel, and the Python build (a PGO/LTO build runs the interpreter-bound parts
of a pure-Python server measurably faster).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sysconfig
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), or "?"."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "?"


def python_build() -> str:
    """This interpreter: implementation, version and its optimisations, e.g.
    "CPython 3.11.2 (PGO, LTO)"; from ``sysconfig``'s CONFIG_ARGS (configure's flags)."""
    flags = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    optimised = [
        name
        for name, flag in (("PGO", "--enable-optimizations"), ("LTO", "--with-lto"))
        if flag in flags
    ]
    build = ", ".join(optimised) if optimised else "no PGO, no LTO"
    return f"{platform.python_implementation()} {platform.python_version()} ({build})"


def describe() -> dict[str, str | int]:
    """{"cpu_model", "cpus" (usable by this process), "kernel", "python"} of this machine."""
    return {
        "cpu_model": cpu_model(),
        "cpus": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": python_build(),
    }

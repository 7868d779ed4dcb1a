"""Where a worker's time goes: py-spy samples one engine process during a run
(``py-spy record --nonblocking``: read from outside, the process is never paused), and
the samples are summed per function — the profile a target not met is reported with:
the last round of each scenario a target judges (``timing``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from loadtest.bench.table import OURS, SHARED_TARGET_SCENARIOS

RATE = 250  # samples per second
# with --gil: the GIL is held a small part of the time in a worker whose threads mostly
# wait, so sample more often to get as many samples (py-spy reads one thread's stack)
GIL_RATE = 1000
SHOWN = 12  # functions in the report
# a frame of py-spy's raw output: "function (path:line)"
_FRAME = re.compile(r"(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")


def timing(engine: str, scenario: str, pinned: bool) -> Literal["during", "after"] | None:
    """Whether the last round of ``engine`` in ``scenario`` is profiled, and how.

    "during": the measured run itself, in the pinned ``hello`` (the CPU targets), for
    every wsgistack engine; py-spy runs on the load CPU, off the engine's. "after": an
    extra run of the same length right after the measured one, for the shipped
    wsgistack in the scenarios of the targets judged on shared CPUs
    (SHARED_TARGET_SCENARIOS), where py-spy's own CPU would count in the measured
    figures. None: not profiled."""
    if pinned:
        return "during" if scenario == "hello" and engine.startswith(OURS) else None
    return "after" if scenario in SHARED_TARGET_SCENARIOS and engine == OURS else None


def py_spy() -> str | None:
    """py-spy's executable (installed next to this Python by requirements/bench.txt), or None."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def start(
    executable: str,
    pid: int,
    seconds: float,
    out: Path,
    pin: Callable[[], None] | None,
    gil: bool = False,
) -> subprocess.Popen:
    """Sample ``pid`` for ``seconds`` into ``out`` (py-spy's raw, collapsed-stack format),
    py-spy itself run with the ``pin`` preexec_fn (pinning.affinity(): off the engine's CPU).
    ``gil``: only the thread holding the GIL (``--gil``), for a worker with threads, whose
    other threads mostly wait (the app's sleep, the loop's epoll): py-spy cannot tell
    those waits from work without pausing the process."""
    argv = [executable, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
            "--rate", str(GIL_RATE if gil else RATE), "--nonblocking", "--format", "raw",
            "--output", str(out), *(["--gil"] if gil else [])]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin
    )


def self_time(raw: str, shown: int = SHOWN) -> list[dict[str, object]]:
    """The ``shown`` functions that held the most samples themselves (their innermost
    frame), from py-spy's raw output (lines "frame;frame;… count"): ``[{"function":
    "Connection._send_now", "file": "wsgistack/http/connection.py", "samples": 120,
    "share": 0.24}]``: its samples and their share of all samples, largest first (paths
    as py-spy shortens them); [] without samples. A function's share includes the
    system calls it made: py-spy sees the kernel's time as the caller's."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frame = _FRAME.match(stack.rpartition(";")[2])
        if frame is not None:
            counts[(frame["function"], frame["path"])] += int(number)
    total = sum(counts.values())
    return [
        {"function": function, "file": path, "samples": count, "share": round(count / total, 4)}
        for (function, path), count in counts.most_common(shown)
    ]

"""Where a worker's time goes: py-spy samples one engine process during a measured run
(``py-spy record --nonblocking``: read from outside, the process is never paused), and
the samples are summed per function — the profile a target not met is reported with."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

RATE = 250  # samples per second
SHOWN = 12  # functions in the report
# a frame of py-spy's raw output: "function (path:line)"
_FRAME = re.compile(r"(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """py-spy's executable (installed next to this Python by requirements/bench.txt), or None."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def start(
    executable: str, pid: int, seconds: float, out: Path, pin: Callable[[], None] | None
) -> subprocess.Popen:
    """Sample ``pid`` for ``seconds`` into ``out`` (py-spy's raw, collapsed-stack format),
    py-spy itself run with the ``pin`` preexec_fn (pinning.affinity(): off the engine's CPU)."""
    argv = [executable, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
            "--rate", str(RATE), "--nonblocking", "--format", "raw",
            "--output", str(out)]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin
    )


def self_time(raw: str, shown: int = SHOWN) -> list[dict[str, object]]:
    """The ``shown`` functions that held the most samples themselves (their innermost
    frame), from py-spy's raw output (lines "frame;frame;… count"): ``[{"function":
    "Connection._send_now", "file": "wsgistack/http/connection.py", "share": 0.24}]``,
    share of all samples, largest first (paths as py-spy shortens them); [] without
    samples. A function's share includes
    the system calls it made: py-spy sees the kernel's time as the caller's."""
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
        {"function": function, "file": path, "share": round(count / total, 4)}
        for (function, path), count in counts.most_common(shown)
    ]

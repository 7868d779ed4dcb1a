"""What a run measures (Run) and its summary per engine and scenario (Row), as written
to results.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    """One measured wrk run of one engine in one scenario."""

    round: int
    engine: str
    scenario: str
    workers: int
    threads: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    peak_rss_worker_kib: int | None
    peak_rss_total_kib: int | None
    # CPU seconds (user + system) used during the measured run by the engine's
    # processes, by nginx's and by wrk; None when not measured
    engine_cpu_s: float | None = None
    nginx_cpu_s: float | None = None
    client_cpu_s: float | None = None
    # from the pinned phase: one worker on one CPU, nginx and wrk on another
    pinned: bool = False
    # where a wsgistack worker's time went in the last round of a scenario a target
    # judges (profile.timing, profile.self_time); None: not profiled
    profile: list[dict[str, object]] | None = None

    def cpu_us_per_request(self, seconds: float | None) -> float | None:
        """``seconds`` of CPU spread over this run's requests, in microseconds each."""
        if seconds is None or not self.requests:
            return None
        return seconds / self.requests * 1e6


@dataclass
class Row:
    """The summary of every round of one engine in one scenario."""

    scenario: str
    engine: str
    workers: int
    threads: int | None  # None: the engine has no threads
    rounds: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    peak_rss_worker_mib: float | None
    errors: int
    # medians over the rounds of CPU microseconds per request: engine, nginx, wrk
    engine_cpu_us: float | None = None
    nginx_cpu_us: float | None = None
    client_cpu_us: float | None = None
    vs_sync: float | None = None
    vs_gthread: float | None = None
    pinned: bool = False  # the pinned phase's row (Run.pinned)


def read(path: Path) -> tuple[dict, list[Run]]:
    """A results.json as ``run.run`` writes it: its ``meta`` and its runs."""
    data = json.loads(path.read_text())
    return data["meta"], [Run(**run) for run in data["runs"]]

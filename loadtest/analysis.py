"""From raw responses to figures: latency percentiles, per-second series, ratios.

Latencies are in seconds, rates in requests per second. Percentiles are
numpy's (linear interpolation between the closest ranks) over every response.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

import numpy as np

from loadtest.generators import PERCENTILES, Responses, StageRun

# A stage is past the knee when its achieved rate falls short of the offered one by more.
KNEE_SHORTFALL = 0.05


def latency_summary(latency: np.ndarray) -> dict[str, float | None]:
    """p50, p90, p99, p99.9 and max of ``latency`` (seconds); None for each when empty."""
    values = latency[~np.isnan(latency)]
    if not len(values):
        return {key: None for key in [*PERCENTILES, "max"]}
    summary = {key: float(np.percentile(values, q)) for key, q in PERCENTILES.items()}
    summary["max"] = float(values.max())
    return summary


def status_errors(status: np.ndarray) -> dict[str, int]:
    """Error counts by kind from statuses: http_429 (Too Many Requests, RFC 6585 §4: nginx's
    per-client flood limits), http_4xx (every other 4xx), http_5xx, failed (-1: no
    response)."""
    return {
        "http_429": int((status == 429).sum()),
        "http_4xx": int(((status >= 400) & (status < 500) & (status != 429)).sum()),
        "http_5xx": int((status >= 500).sum()),
        "failed": int((status < 0).sum()),
    }


def per_second(responses: Responses, t0: float, seconds: int) -> dict[str, list]:
    """Per-second series over [t0, t0 + seconds): responses completed, and the p50 and p99
    latency (seconds; None where a second has no response or latency is not measured)."""
    series: dict[str, list] = {"t": list(range(seconds)), "throughput": [], "p50": [], "p99": []}
    offset = np.floor(responses.end - t0).astype(int) if len(responses) else np.zeros(0, int)
    for second in range(seconds):
        in_second = offset == second
        series["throughput"].append(int(in_second.sum()))
        latency = responses.latency[in_second & (responses.status > 0)]
        latency = latency[~np.isnan(latency)]
        for key, q in (("p50", 50.0), ("p99", 99.0)):
            series[key].append(float(np.percentile(latency, q)) if len(latency) else None)
    return series


def stage_summary(run: StageRun) -> dict:
    """One stage of a ramp: requests answered (any status), errors (failed, 4xx/5xx, not
    completed), latency percentiles of the answers (s), when it started and its
    generators exited (epoch s, None if not recorded).

    ``achieved_rps`` is the rate the answers came at: answered requests over
    ``measured_seconds``, the span from the stage's first answer to its last stretched by
    one interval between answers (n answers span n - 1), at least the planned duration.
    A stage answered at its offered rate achieved that rate, however long each answer
    took; one whose answers come slower, or trail on after its end, achieved less.
    """
    responses, plan = run.responses, run.plan
    answered = responses.status > 0
    count = int(answered.sum())
    measured = plan.duration
    if count > 1:
        ends = responses.end[answered]
        measured = max(measured, float(ends.max() - ends.min()) * count / (count - 1))
    failed = int(((responses.status < 0) | (responses.status >= 400)).sum())
    return {
        "stage": run.number,
        "rate_rps": plan.rate,
        "duration_seconds": plan.duration,
        "offered": plan.offered,
        "requests": count,
        "achieved_rps": count / measured,
        "measured_seconds": measured,
        "latency_seconds": latency_summary(responses.latency[answered]),
        "errors": failed + run.not_completed,
        "started": run.started,
        "finished": run.finished,
    }


def knee(stages: list[dict], p99_limit_seconds: float | None) -> dict | None:
    """The first stage (a stage_summary) whose p99 exceeds ``p99_limit_seconds`` (None: no
    latency limit) or whose achieved rate falls short of the offered rate by more than
    KNEE_SHORTFALL: {"stage": number, "reason": in words}; None if every stage kept up."""
    for stage in stages:
        p99 = stage["latency_seconds"]["p99"]
        if p99_limit_seconds is not None and p99 is not None and p99 > p99_limit_seconds:
            return {
                "stage": stage["stage"],
                "reason": f"p99 {p99 * 1000:.0f} ms > {p99_limit_seconds * 1000:g} ms",
            }
        short = 1 - stage["achieved_rps"] / stage["rate_rps"]
        if short > KNEE_SHORTFALL:
            return {
                "stage": stage["stage"],
                "reason": f"achieved {stage['achieved_rps']:.1f} req/s, {short:.0%} short of "
                f"the offered {stage['rate_rps']:g} req/s",
            }
    return None


def per_minute(responses: Responses, t0: float, minutes: int) -> dict[str, list]:
    """Per-minute series over [t0, t0 + 60 x minutes) by completion time (a soak's): answers
    per second (any status), p50 and p99 latency of the answers (s; None where a minute
    has none), errors (failed, 4xx, 5xx)."""
    series: dict[str, list] = {
        "minute": list(range(minutes)),
        "throughput_rps": [],
        "p50": [],
        "p99": [],
        "errors": [],
    }
    minute = np.floor((responses.end - t0) / 60).astype(int) if len(responses) else np.zeros(0)
    answered = responses.status > 0
    failed = (responses.status < 0) | (responses.status >= 400)
    for m in range(minutes):
        here = minute == m
        latency = responses.latency[here & answered]
        series["throughput_rps"].append(int((here & answered).sum()) / 60)
        for key, q in (("p50", 50.0), ("p99", 99.0)):
            series[key].append(float(np.percentile(latency, q)) if len(latency) else None)
        series["errors"].append(int((here & failed).sum()))
    return series


def _present(values: Iterable[float | None]) -> list[float]:
    """``values`` without the Nones and NaNs."""
    return [v for v in values if v is not None and not math.isnan(v)]


def median(values: Iterable[float | None]) -> float | None:
    """The median of ``values`` (Nones and NaNs left out), or None when none is left."""
    kept = _present(values)
    return statistics.median(kept) if kept else None


def spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Median, min and max of ``values`` (Nones and NaNs left out), and how many there were."""
    kept = _present(values)
    if not kept:
        return {"median": None, "min": None, "max": None, "rounds": 0}
    return {
        "median": median(kept),
        "min": min(kept),
        "max": max(kept),
        "rounds": len(kept),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b

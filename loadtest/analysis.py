"""From raw responses to figures: latency percentiles, per-second series, ratios.

Latencies are in seconds, rates in requests per second. Percentiles are
numpy's (linear interpolation between the closest ranks) over every response.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

import numpy as np

from loadtest.generators import PERCENTILES, Responses


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

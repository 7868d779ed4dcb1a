"""Thresholds: pass/fail criteria on a run's metrics, in the form of k6's thresholds.

A scenario's ``[thresholds]`` table maps a metric to one expression or a list of them:

    [thresholds]
    http_req_failed = "rate<0.01"
    http_req_duration = ["p(95)<200", "p(99)<500"]   # milliseconds
    checks = "rate>0.99"
    http_reqs = "rate>100"                            # requests per second
    "http_req_duration{name:hello}" = "p(99)<50"     # the scenario's request "hello" only

An expression is an aggregation, an operator (``<``, ``<=``, ``>``, ``>=``, ``==``,
``!=``) and a number. The metrics, k6's names, measured per engine over all its
rounds from the generator's log (one line per request):

* ``http_req_duration`` (k6: a trend), ms: the latency of every answered request,
  whatever its status; ``avg``, ``min``, ``med``, ``max``, ``p(N)`` (N in 0..100,
  numpy's percentile: linear between the closest ranks).
* ``http_req_failed`` (a rate, 0..1): the share of requests that failed: no answer, or
  a status not in the request's ``expect.status`` (k6's expected statuses, by
  default 200-399). Requests the generator never logged count as failed: the open
  loop's not completed ones, the closed loop's socket errors and timeouts (wrk's).
* ``checks`` (a rate, 0..1): the share of logged requests whose status is in their
  request's ``expect.status`` (a request without an answer fails its check).
* ``http_reqs`` (a counter): ``count``, the requests in the generator's log;
  ``rate``, those per second of the engine's measured time.

``metric{name:REQUEST}`` (k6's sub-metric syntax) measures one request of the
scenario; the never-logged requests of http_req_failed cannot be told apart by
request and are left out of sub-metrics.

Where the target is the local stack, the server's side (Prometheus, the probe routes
left out) is checked too, in entries of their own (``"source": "prometheus"``):
``http_req_failed`` against the share of the app's answers that were 5xx (a 5xx
some request of the scenario expects left out), ``http_req_duration``'s ``p(N)``
and ``med`` against the quantile of the app's duration histogram (PromQL
histogram_quantile, the median of the rounds'); sub-metrics are client-side only.
A threshold fails when either side fails it.
"""

from __future__ import annotations

import operator
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loadtest.runner import Round
    from loadtest.scenario import Scenario

# metric -> its aggregations, k6's names ("p(N)": any percentile)
AGGREGATIONS = {
    "http_req_duration": ("avg", "min", "med", "max", "p(N)"),
    "http_req_failed": ("rate",),
    "checks": ("rate",),
    "http_reqs": ("count", "rate"),
}
RATES = ("http_req_failed", "checks")  # fractions 0..1
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
# Requests the generator counted but never logged (runner.client_summary's error kinds):
# the open loop's not completed ones, the closed loop's socket errors and timeouts.
UNLOGGED = ("not_completed", "connect", "read", "write", "timeout")
_KEY = re.compile(r"(?P<metric>[^{}]*)(?:\{(?P<tag>[^{}]*)\})?")
_EXPRESSION = re.compile(
    r"\s*(?P<aggregation>avg|min|med|max|count|rate|p\(\s*(?P<percentile>[0-9]+(?:\.[0-9]+)?)\s*\))"
    r"\s*(?P<operator><=|>=|==|!=|<|>)\s*(?P<limit>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*"
)


class ThresholdError(ValueError):
    """A [thresholds] table names an unknown metric or request, or holds a malformed
    expression; the message names it."""


@dataclass(frozen=True)
class Threshold:
    """One expression on one metric: ``aggregation operator limit``.

    ``request``: the scenario request a sub-metric (``{name:REQUEST}``) measures, None
    for all of them; ``limit`` in the metric's unit (ms, a fraction 0..1, requests or
    requests/s); ``expression``: as written, without spaces.
    """

    metric: str
    request: str | None
    aggregation: str
    operator: str
    limit: float
    expression: str

    @property
    def key(self) -> str:
        """The metric as k6 names it, e.g. ``http_req_duration{name:hello}``."""
        return self.metric + (f"{{name:{self.request}}}" if self.request else "")

    @property
    def unit(self) -> str:
        """``ms``, ``rate`` (a fraction 0..1), ``count`` (requests) or ``req/s``."""
        if self.metric == "http_req_duration":
            return "ms"
        if self.metric in RATES:
            return "rate"
        return "count" if self.aggregation == "count" else "req/s"

    @property
    def quantile(self) -> float | None:
        """The quantile (0..1) of a p(N) or med of http_req_duration; None otherwise."""
        if self.aggregation == "med":
            return 0.5
        if self.aggregation.startswith("p("):
            return float(self.aggregation[2:-1]) / 100
        return None

    @property
    def cross_checked(self) -> bool:
        """Whether Prometheus has the server's side of it (see the module docstring)."""
        return self.request is None and (
            self.metric == "http_req_failed"
            or (self.metric == "http_req_duration" and self.quantile is not None)
        )


def parse(table: object, requests: list[str]) -> tuple[Threshold, ...]:
    """The thresholds of a scenario's [thresholds] table; ``requests``: the scenario's
    request names (for sub-metrics). Raises ThresholdError naming what is wrong."""
    if not isinstance(table, dict):
        raise ThresholdError('thresholds must be a table: metric = "expression" or [...]')
    parsed: list[Threshold] = []
    for key, value in table.items():
        metric, request = _metric(key, requests)
        expressions = [value] if isinstance(value, str) else value
        if (
            not isinstance(expressions, list)
            or not expressions
            or not all(isinstance(e, str) for e in expressions)
        ):
            raise ThresholdError(
                f'thresholds: {key}: expected an expression like "p(95)<200" or a list of '
                f"them, got {value!r}"
            )
        parsed += [_expression(metric, request, text, key) for text in expressions]
    return tuple(parsed)


def _metric(key: str, requests: list[str]) -> tuple[str, str | None]:
    match = _KEY.fullmatch(key)
    metric = match["metric"].strip() if match else key
    if metric not in AGGREGATIONS:
        raise ThresholdError(
            f"thresholds: unknown metric {key!r}; known: {', '.join(AGGREGATIONS)}"
        )
    if match is None or match["tag"] is None:
        return metric, None
    tag, _, request = (part.strip() for part in match["tag"].partition(":"))
    if tag != "name" or not request:
        raise ThresholdError(
            f"thresholds: {key!r}: a sub-metric selects a request as {{name:REQUEST}}, "
            f"got {{{match['tag']}}}"
        )
    if request not in requests:
        raise ThresholdError(
            f"thresholds: {key!r}: no request named {request!r}; the scenario's: "
            f"{', '.join(requests)}"
        )
    return metric, request


def _expression(metric: str, request: str | None, text: str, key: str) -> Threshold:
    match = _EXPRESSION.fullmatch(text)
    if not match:
        raise ThresholdError(
            f"thresholds: {key}: malformed expression {text!r}; expected an aggregation, "
            "an operator and a number, e.g. p(95)<200 or rate<0.01"
        )
    percentile = match["percentile"]
    aggregation = f"p({percentile})" if percentile else match["aggregation"]
    allowed = AGGREGATIONS[metric]
    if ("p(N)" if percentile else aggregation) not in allowed:
        raise ThresholdError(
            f"thresholds: {key}: {metric} has no {aggregation}; it has {', '.join(allowed)}"
        )
    if percentile and not 0 <= float(percentile) <= 100:
        raise ThresholdError(f"thresholds: {key}: {aggregation}: a percentile is 0..100")
    limit = float(match["limit"])
    if metric in RATES and limit > 1:
        raise ThresholdError(
            f"thresholds: {key}: {text!r}: a rate is a fraction 0..1 (rate<0.01 is 1 %)"
        )
    return Threshold(metric, request, aggregation, match["operator"], limit, "".join(text.split()))


def server_quantiles(thresholds: Iterable[Threshold]) -> list[float]:
    """The quantiles (0..1) of the server's duration histogram that ``thresholds``
    cross-check, ascending (asked of Prometheus for each round)."""
    return sorted({t.quantile for t in thresholds if t.cross_checked and t.quantile is not None})


# -- evaluation ----------------------------------------------------------------------


def p99_limit_seconds(thresholds: Iterable[Threshold]) -> float | None:
    """The tightest upper limit (seconds) on p(99) of every request's http_req_duration
    (``p(99)<500`` -> 0.5), which marks a ramp's knee; None without one."""
    limits = [
        t.limit / 1000
        for t in thresholds
        if t.metric == "http_req_duration"
        and t.request is None
        and t.aggregation == "p(99)"
        and t.operator in ("<", "<=")
    ]
    return min(limits, default=None)


def evaluate(scenario: Scenario, results: list[Round], settings: dict, enforced: bool) -> dict:
    """summary["thresholds"]: every threshold of ``scenario`` checked per engine on the
    client's side and, where the target is the local stack (``settings["target_local"]``,
    True if absent), on the server's; ``enforced``: whether a failure fails the run.

    ``passed`` is None when the scenario has no thresholds.
    """
    local = settings.get("target_local", True)
    checks = []
    for engine in settings["engines"]:
        rounds = [r for r in results if r.engine == engine]
        for threshold in scenario.thresholds:
            observed = client_value(threshold, scenario, rounds)
            checks.append(check(threshold, engine, "client", observed))
            if local and threshold.cross_checked:
                observed = server_value(threshold, scenario, rounds)
                checks.append(check(threshold, engine, "prometheus", observed))
    return {
        "enforced": enforced,
        "passed": all(c["passed"] for c in checks) if checks else None,
        "cross_checked": local,
        "checks": checks,
    }


def _joined(rounds: list[Round], field: str) -> np.ndarray:
    return np.concatenate([getattr(r.responses, field) for r in rounds])


def expected(status: np.ndarray, kind: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Per logged request: whether its status is in its request's expect.status."""
    passed = np.zeros(len(status), dtype=bool)
    for index, request in enumerate(scenario.requests):
        passed |= (kind == index) & np.isin(status, request.expect_status)
    return passed


def client_value(threshold: Threshold, scenario: Scenario, rounds: list[Round]) -> float | None:
    """The aggregation of the metric over the engine's rounds, from the generator's log
    (see the module docstring), in the threshold's unit; None when nothing measures it."""
    status, kind, latency = (_joined(rounds, f) for f in ("status", "kind", "latency"))
    if threshold.request is None:
        chosen = np.ones(len(status), dtype=bool)
        unlogged = sum(r.client["errors"].get(k, 0) for r in rounds for k in UNLOGGED)
    else:
        chosen = kind == [r.name for r in scenario.requests].index(threshold.request)
        unlogged = 0
    logged = int(chosen.sum())
    passed = int((chosen & expected(status, kind, scenario)).sum())
    metric, aggregation = threshold.metric, threshold.aggregation
    if metric == "http_req_duration":
        ms = latency[chosen & (status > 0)] * 1000
        ms = ms[~np.isnan(ms)]
        if not len(ms):
            return None
        if threshold.quantile is not None:
            return float(np.percentile(ms, 100 * threshold.quantile))
        return float({"avg": np.mean, "min": np.min, "max": np.max}[aggregation](ms))
    if metric == "http_req_failed":
        sent = logged + unlogged
        return (sent - passed) / sent if sent else None
    if metric == "checks":
        return passed / logged if logged else None
    if aggregation == "count":  # http_reqs
        return float(logged)
    duration = sum(r.client["duration_seconds"] for r in rounds)
    return logged / duration if duration else None


def server_value(threshold: Threshold, scenario: Scenario, rounds: list[Round]) -> float | None:
    """The server's side of a cross-checked threshold from the rounds' Prometheus counts
    (runner.server_summary), in the threshold's unit; None when the server has no figure."""
    if threshold.metric == "http_req_failed":
        wanted = {code for request in scenario.requests for code in request.expect_status}
        counted = failed = 0
        for r in rounds:
            for key, n in r.server["by_status"].items():
                code = int(key.split()[-1])
                counted += n
                failed += n if code >= 500 and code not in wanted else 0
        return failed / counted if counted else None
    key = f"{threshold.quantile:g}"  # as runner.server_summary writes it
    values = [r.server.get("latency_quantiles_seconds", {}).get(key) for r in rounds]
    kept = [v for v in values if v is not None]
    return 1000 * statistics.median(kept) if kept else None


def check(threshold: Threshold, engine: str, source: str, observed: float | None) -> dict:
    """One entry of summary["thresholds"]["checks"]."""
    passed = observed is not None and OPERATORS[threshold.operator](observed, threshold.limit)
    return {
        "engine": engine,
        "metric": threshold.key,
        "request": threshold.request,
        "expression": threshold.expression,
        "source": source,
        "observed": observed,
        "limit": threshold.limit,
        "unit": threshold.unit,
        "passed": passed,
        "message": _message(threshold, source, observed, passed),
    }


def show(value: float, unit: str) -> str:
    """A value in its unit for people: ``312 ms``, ``0.0123``, ``1500``, ``98.2 req/s``."""
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"
    if unit == "rate":
        return f"{value:.4g}"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.1f} req/s"


def _message(threshold: Threshold, source: str, observed: float | None, passed: bool) -> str:
    """The observed value, and for a failure by how much it misses the limit."""
    if observed is None:
        if source == "prometheus":
            return "no value: the server counted no requests in the rounds' windows"
        answered = "answered " if threshold.metric == "http_req_duration" else ""
        return f"no value: no {answered}requests to measure"
    unit, limit = threshold.unit, threshold.limit
    text = show(observed, unit)
    if passed:
        return text
    if threshold.operator == "==":
        return f"{text}, not {show(limit, unit)}"
    if threshold.operator == "!=" or observed == limit:
        return f"{text}, at the limit"
    miss = abs(observed - limit)
    share = f" ({100 * miss / limit:.0f} %)" if limit else ""
    return f"{text}, {show(miss, unit)}{share} {'over' if observed > limit else 'under'}"


def line(entry: dict) -> str:
    """A check in one line: ``wsgistack http_req_duration p(95)<200: 312 ms, ... over``."""
    source = " (Prometheus)" if entry["source"] == "prometheus" else ""
    return f"{entry['engine']} {entry['metric']} {entry['expression']}{source}: {entry['message']}"

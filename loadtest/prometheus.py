"""The server's side of a run, from the stack's Prometheus (HTTP API, /api/v1/query).

A round is bracketed by two successful scrapes of the app's exporter (job
``app``): the runner waits for the first one after the round is ready to start
and only then starts the generator, and after the last answer it waits for the
next one. Counters are read at exactly those two scrape timestamps (PromQL's
``@`` modifier), so their differences count the requests the server finished
in between, exactly. The probes that also reach the app — Docker's healthcheck
and nginx's upstream check (nginx/upstreams.sh), every second — carry the
``http_route`` label ``/healthz`` or ``/readyz`` (PROBE_ROUTES) and are left out
of every query here, so what is counted is the load and nothing else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

JOB = 'job="app"'
PROBE_ROUTES = ("/healthz", "/readyz")  # the app's liveness and readiness checks: not load
LOAD = JOB + "".join(f',http_route!="{route}"' for route in PROBE_ROUTES)  # the app's requests
REQUESTS = "http_server_request_duration_seconds_count"
BUCKETS = "http_server_request_duration_seconds_bucket"
RESTARTS = "wsgi_server_worker_restarts_total"  # a series per reason, once one happened
WORKERS = "wsgi_server_workers"  # exported by our server's master (gunicorn has neither)


class PrometheusError(RuntimeError):
    """Prometheus did not answer, or answered an error; the message has its words."""


@dataclass
class ServerCounts:
    """What the server finished between two scrapes (``before``, ``after``: epoch s).

    ``by_status``: requests per "METHOD STATUS" (e.g. "GET 200"), the probe routes
    left out; ``worker_restarts``: None when the engine does not export it
    (gunicorn); ``p99_seconds``: the 99th percentile of request duration from
    the histogram (PromQL histogram_quantile: linear within a bucket, so at
    most as precise as the bucket bounds); ``quantiles_seconds``: more quantiles
    of it, {q (0..1): seconds or None}, those a thresholds cross-check asked for.
    """

    before: float
    after: float
    by_status: dict[str, int]
    worker_restarts: int | None
    p99_seconds: float | None
    quantiles_seconds: dict[float, float | None] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())

    @property
    def errors_5xx(self) -> int:
        return sum(n for key, n in self.by_status.items() if key.split()[-1].startswith("5"))


class Prometheus:
    """A small client of Prometheus' query API at ``url`` (e.g. http://127.0.0.1:9090)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.client = httpx.Client(base_url=url, timeout=timeout)

    def _get(self, path: str, **params) -> dict:
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus at {self.client.base_url}: {exc}") from None
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or body.get("status") != "success":
            error = body.get("error", response.text[:200])
            raise PrometheusError(f"Prometheus answered {response.status_code}: {error}")
        return body["data"]

    def query(self, promql: str, at: float) -> list[dict]:
        """An instant query evaluated at ``at`` (epoch s); the result list."""
        return self._get("/api/v1/query", query=promql, time=f"{at:.3f}")["result"]

    def scrapes(self, since: float, until: float) -> list[float]:
        """Timestamps (epoch s) of the app's successful scrapes (``up`` is 1) in
        [since, until], ascending. A failed scrape has no samples to read."""
        window = max(1, math.ceil((until - since) * 1000))
        result = self.query(f"up{{{JOB}}}[{window}ms]", until)
        times = {float(ts) for series in result for ts, up in series["values"] if up == "1"}
        return sorted(t for t in times if since <= t <= until)

    def wait_for_scrape(self, after: float, timeout: float = 60) -> float:
        """The timestamp of the first app scrape at or after ``after``, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.time()
            found = self.scrapes(after, now) if now >= after else []
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"no successful scrape of the app within {timeout:.0f} s "
                    f"(Prometheus says: {self.scrape_error()})"
                )
            time.sleep(0.5)

    def scrape_error(self) -> str:
        """The app target's last scrape error, as Prometheus' targets page shows it."""
        targets = self._get("/api/v1/targets")["activeTargets"]
        errors = [t.get("lastError") for t in targets if t["labels"].get("job") == "app"]
        return next((e for e in errors if e), "no error") if errors else "no app target"

    def _by_status(self, at: float) -> dict[str, int]:
        labels = "http_request_method, http_response_status_code"
        result = self.query(f"sum by ({labels}) ({REQUESTS}{{{LOAD}}} @ {at:.3f})", at)
        counts = {}
        for series in result:
            metric = series["metric"]
            key = f"{metric['http_request_method']} {metric['http_response_status_code']}"
            counts[key] = round(float(series["value"][1]))
        return counts

    def _sum(self, metric: str, at: float) -> int | None:
        result = self.query(f"sum({metric}{{{JOB}}} @ {at:.3f})", at)
        return round(float(result[0]["value"][1])) if result else None

    def quantile(self, q: float, before: float, after: float) -> float | None:
        """The ``q``-quantile (0..1) of the app's request duration, seconds, between the
        two scrapes ``before`` and ``after`` (epoch s), the probe routes left out; None
        when the server finished no request in between. The buckets are read at the two
        scrapes, like the counts: exact, and a series born in between (a route's first
        request) counts from 0, where increase() would need two samples of it."""
        end, start = (f"sum by (le) ({BUCKETS}{{{LOAD}}} @ {t:.3f})" for t in (after, before))
        result = self.query(f"histogram_quantile({q:g}, {end} - ({start} or {end} * 0))", after)
        value = float(result[0]["value"][1]) if result else math.nan
        return None if math.isnan(value) else value

    def counts(self, before: float, after: float, quantiles: Iterable[float] = ()) -> ServerCounts:
        """The server's requests (the probe routes left out), worker restarts, p99 and
        the ``quantiles`` (0..1) of request duration between the two scrapes ``before``
        and ``after`` (epoch s); raises PrometheusError."""
        start, end = self._by_status(before), self._by_status(after)
        by_status = {
            key: end[key] - start.get(key, 0) for key in sorted(end) if end[key] - start.get(key, 0)
        }
        restarts = None
        if self._sum(WORKERS, after):  # an engine that exports its worker count
            restarts = (self._sum(RESTARTS, after) or 0) - (self._sum(RESTARTS, before) or 0)
        return ServerCounts(
            before,
            after,
            by_status,
            restarts,
            self.quantile(0.99, before, after),
            {q: self.quantile(q, before, after) for q in quantiles},
        )

"""The server's counts from Prometheus' query API, answered here by a fake (httpx's
MockTransport) that evaluates nothing: what is checked is what is asked and how the
answers become counts."""

from __future__ import annotations

import httpx
import pytest

from loadtest.prometheus import PROBE_ROUTES, Prometheus, PrometheusError

BEFORE, AFTER = 1_700_000_000.0, 1_700_000_010.0


def vector(*samples: tuple[dict, float]) -> dict:
    return {
        "resultType": "vector",
        "result": [{"metric": m, "value": [0, str(v)]} for m, v in samples],
    }


def fake(answer) -> tuple[Prometheus, list[tuple[str, float]]]:
    """A client whose every query (PromQL, time) is recorded and answered by ``answer``."""
    asked: list[tuple[str, float]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        query, at = request.url.params["query"], float(request.url.params["time"])
        asked.append((query, at))
        data = answer(query, at)
        if data is None:
            return httpx.Response(400, json={"status": "error", "error": "bad_data: nope"})
        return httpx.Response(200, json={"status": "success", "data": data})

    prometheus = Prometheus("http://prometheus:9090")
    prometheus.client = httpx.Client(
        base_url="http://prometheus:9090", transport=httpx.MockTransport(handle)
    )
    return prometheus, asked


def by_method_and_status(query: str, at: float) -> dict:
    if query.startswith("sum by (http_request_method"):
        get = 10 if at == BEFORE else 30
        post = (
            []
            if at == BEFORE
            else [({"http_request_method": "POST", "http_response_status_code": "200"}, 5)]
        )
        return vector(
            ({"http_request_method": "GET", "http_response_status_code": "200"}, get), *post
        )
    if query.startswith("sum(wsgi_server_workers"):
        return vector(({}, 2))
    if query.startswith("sum(wsgi_server_worker_restarts_total"):
        return vector(({}, 1 if at == BEFORE else 2))
    if query.startswith("histogram_quantile"):
        return vector(({}, 0.02))
    return None


def test_counts_are_differences_at_the_two_scrapes_without_the_probe_routes():
    prometheus, asked = fake(by_method_and_status)
    counts = prometheus.counts(BEFORE, AFTER)
    assert counts.by_status == {"GET 200": 20, "POST 200": 5}
    assert (counts.requests, counts.errors_5xx) == (25, 0)
    assert (counts.worker_restarts, counts.p99_seconds) == (1, 0.02)
    requests = [q for q, _ in asked if "http_server_request_duration_seconds" in q]
    assert len(requests) == 3  # the counts at both scrapes and the histogram's p99
    for query in requests:
        for route in PROBE_ROUTES:
            assert f'http_route!="{route}"' in query
    assert f"@ {BEFORE:.3f}" in requests[0] and f"@ {AFTER:.3f}" in requests[1]
    assert requests[2].startswith("histogram_quantile(0.99, sum by (le) (")
    assert f"@ {AFTER:.3f}) - (sum by (le) (" in requests[2]  # the buckets at the two scrapes
    assert f"@ {BEFORE:.3f}) or sum by (le) (" in requests[2]  # none yet: all from 0


def test_a_round_on_gunicorn_has_no_worker_restarts():
    def answer(query, at):
        if query.startswith("sum(wsgi_server_workers"):
            return vector()
        if query.startswith("histogram_quantile"):
            return vector(({}, float("nan")))
        return by_method_and_status(query, at)

    counts = fake(answer)[0].counts(BEFORE, AFTER)
    assert (counts.worker_restarts, counts.p99_seconds) == (None, None)


def test_the_opening_scrape_is_the_first_successful_one_at_or_after_the_moment():
    def answer(query, at):
        assert query.startswith('up{job="app"}[')
        values = [[BEFORE - 2, "1"], [BEFORE + 3, "0"], [BEFORE + 8, "1"]]
        return {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}

    prometheus, _ = fake(answer)
    assert prometheus.wait_for_scrape(BEFORE) == BEFORE + 8  # a failed scrape has no counts


def test_an_error_answer_names_what_prometheus_said():
    prometheus, _ = fake(lambda query, at: None)
    with pytest.raises(PrometheusError, match="400: bad_data: nope"):
        prometheus.query("up", AFTER)


def test_the_quantiles_a_threshold_cross_checks_are_asked_of_the_histogram():
    def answer(query, at):
        if query.startswith("histogram_quantile(0.95,"):
            return vector(({}, 0.2))
        if query.startswith("histogram_quantile(0.5,"):
            return vector(({}, float("nan")))  # no request in the window
        return by_method_and_status(query, at)

    prometheus, asked = fake(answer)
    counts = prometheus.counts(BEFORE, AFTER, [0.5, 0.95])
    assert (counts.p99_seconds, counts.quantiles_seconds) == (0.02, {0.5: None, 0.95: 0.2})
    quantiles = [q for q, at in asked if q.startswith("histogram_quantile")]
    assert len(quantiles) == 3 and all(at == AFTER for q, at in asked[-3:])
    for query in quantiles:
        assert all(f'http_route!="{route}"' in query for route in PROBE_ROUTES)

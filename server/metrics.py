"""Prometheus instruments (prometheus-client, multiprocess mode).

Workers and the master write to ``PROMETHEUS_MULTIPROC_DIR``; the exporter
process aggregates every file there (see ``server.exporter``). The variable must
be set before this module is first imported. Names follow Prometheus naming
(base units, ``_total``) and the OpenTelemetry HTTP server semantic
conventions (``http_server_request_duration_seconds`` with
``http_request_method`` and ``http_response_status_code``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from . import multiprocess

# Buckets for a web app, 5 ms … 10 s (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# OpenTelemetry: methods outside this set are reported as _OTHER (bounded cardinality).
KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
)

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time from a request's complete head to the end of its response, seconds.",
    ["http_request_method", "http_response_status_code"],
    buckets=DURATION_BUCKETS,
)
ACTIVE_REQUESTS = Gauge(
    "http_server_active_requests", "Requests being served now.", multiprocess_mode="livesum"
)
REQUEST_BODY_BYTES = Counter(
    "http_server_request_body_size_bytes", "Request body bytes received (after de-chunking)."
)
RESPONSE_BODY_BYTES = Counter(
    "http_server_response_body_size_bytes", "Response body bytes sent (before chunk framing)."
)
WORKERS = Gauge("wsgi_server_workers", "Worker processes running now.", multiprocess_mode="livemax")
WORKER_RESTARTS = Counter(
    "wsgi_server_worker_restarts",
    "Workers replaced, by reason: exit, timeout, max-requests, memory.",
    ["reason"],
)


def method_label(method: str) -> str:
    """The http_request_method label: the method, or _OTHER if non-standard."""
    return method if method in KNOWN_METHODS else "_OTHER"


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges and archive its counters and histograms
    (see ``server.multiprocess``), so its files don't pile up."""
    path = multiprocess.directory()
    if path:
        multiprocess.archive_dead_process(pid, path)

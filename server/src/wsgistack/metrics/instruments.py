"""Prometheus instruments (prometheus-client, multiprocess mode).

Workers and the master write to ``PROMETHEUS_MULTIPROC_DIR``; the exporter
process aggregates every file there (see ``wsgistack.metrics.exporter``). The variable must
be set before this module is first imported; files are named by
``wsgistack.metrics.files.process_identity`` (stable per worker slot). Names follow
Prometheus naming (base units, ``_total``) and the OpenTelemetry HTTP server
semantic conventions (``http_server_request_duration_seconds`` with
``http_request_method``, ``http_response_status_code`` and ``http_route``).

The route. The server cannot know the app's routes, so the app tells it: it
sets ``environ[ROUTE_ENVIRON_KEY]`` (``"wsgistack.http_route"``) to the route
*template* that matched, e.g. ``/users/<int:id>`` (Flask's
``request.url_rule.rule``, Django's ``request.resolver_match.route``), never the
raw path. Requests without one (unmatched paths, requests the server refused,
apps that don't set it) fold into ``OTHER``; so do new values past
``MAX_ROUTES`` distinct ones in the metrics directory (``routes``), a guard
against an app that passes raw paths by mistake.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram

from .._types import ROUTE_ENVIRON_KEY, Environ
from . import files
from .routes import admit

files.install_identities()  # before the first instrument exists

# Buckets for a web app, 5 ms … 10 s (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# OpenTelemetry's value for a method or route outside the known set (bounded cardinality).
OTHER = "_OTHER"
# OpenTelemetry: methods outside this set are reported as _OTHER.
KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
)

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time from a request's complete head to the end of its response, seconds.",
    ["http_request_method", "http_response_status_code", "http_route"],
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
RESTART_REASONS = ("exit", "timeout", "max-requests", "memory")
WORKER_RESTARTS = Counter(
    "wsgi_server_worker_restarts",
    "Workers replaced, by reason: exit, timeout, max-requests, memory.",
    ["reason"],
)
for _reason in RESTART_REASONS:  # exported as 0 from the start, so rate() and alerts see them
    WORKER_RESTARTS.labels(_reason)
APP_IMPORT_FAILURES = Counter(
    "wsgi_server_app_import_failures",
    "Times the WSGI application could not be imported (a worker's boot, or --preload).",
)


def method_label(method: str) -> str:
    """The http_request_method label: the method, or _OTHER if non-standard."""
    return method if method in KNOWN_METHODS else OTHER


def route_label(environ: Environ) -> str:
    """The http_route label: the route template the app set in ``environ``.

    ``environ[ROUTE_ENVIRON_KEY]`` if the app set it to a non-empty str and it
    is one of the first ``routes.MAX_ROUTES`` distinct values of the metrics
    directory (``routes.admit``); otherwise ``OTHER``.
    """
    route = environ.get(ROUTE_ENVIRON_KEY)
    if type(route) is not str or not route:
        return OTHER
    return route if admit(route) else OTHER


def multiprocess_dir() -> str | None:
    """The metrics directory, or None when metrics are per-process only."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def mark_worker_dead(identity: str | int) -> None:
    """Drop a dead worker's live gauges (prometheus-client's mark_process_dead).

    ``identity`` names its files: ``files.worker_identity(slot)`` for
    ours, the pid for a gunicorn worker. Its counters and histograms stay: their
    totals still count, and the slot's next worker continues them.
    """
    if multiprocess_dir():
        from prometheus_client import multiprocess as client_multiprocess

        client_multiprocess.mark_process_dead(identity)

"""``wsgistack-exporter --bind HOST:PORT``: serve every worker's metrics.

A separate small process (supervisord runs it beside the server) that
aggregates the files in ``PROMETHEUS_MULTIPROC_DIR`` with prometheus-client's
``MultiProcessCollector`` on each scrape. Paths: ``/metrics`` (the Prometheus
text format) and ``/healthz`` (200 "ok"); anything else is 404.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess

from .._types import Environ, StartResponse, WSGIApp


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # scrapes every few seconds: no access log
        pass


def application(registry: CollectorRegistry) -> WSGIApp:
    """The exporter's WSGI app (PEP 3333) over ``registry``: ``/metrics`` in the
    Prometheus text format, ``/healthz`` (200 "ok"), else 404."""
    metrics_app: WSGIApp = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the metrics of ``PROMETHEUS_MULTIPROC_DIR`` until SIGTERM.

    ``argv`` defaults to ``sys.argv[1:]``. Returns exit status 2 when the
    directory is unset or missing; SIGTERM ends the process with status 0
    (SystemExit). Raises OSError when the address cannot be bound.
    """
    parser = argparse.ArgumentParser(prog="wsgistack-exporter", description=__doc__)
    parser.add_argument(
        "-b",
        "--bind",
        default="127.0.0.1:9100",
        metavar="HOST:PORT",
        help="address to serve /metrics on (default 127.0.0.1:9100)",
    )
    args = parser.parse_args(argv)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or not os.path.isdir(directory):
        print("error: PROMETHEUS_MULTIPROC_DIR must name an existing directory", file=sys.stderr)
        return 2
    host, _, port = args.bind.rpartition(":")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    server = make_server(host.strip("[]"), int(port), application(registry), _Server, _QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"exporter: serving {directory} on http://{args.bind}/metrics", file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings for WSGI_SERVER=gunicorn, from the same environment as ours.

Follows gunicorn's deployment documentation for running behind nginx in a
container: heartbeat files on tmpfs (worker_tmp_dir=/dev/shm), logs to
stdout/stderr, forwarded headers trusted only as configured, gthread workers
when threads are asked for (the sync worker has no keep-alive). The app is
wrapped so gunicorn's workers record the same Prometheus metrics as ours,
which keeps the two engines comparable in one Prometheus.
"""

import os
import time

from wsgistack.config import ENV_PREFIX, default, parse


def setting(name: str) -> str:
    """wsgistack's setting ``name`` from its WSGISTACK_* variable, else wsgistack's default."""
    value = os.environ.get(ENV_PREFIX + name.upper(), "")
    return value if value != "" else str(default(name))


bind = ["0.0.0.0:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY") or setting("workers"))
threads = int(setting("threads"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(float(setting("timeout")))
graceful_timeout = int(float(setting("graceful_timeout")))
keepalive = int(float(setting("keep_alive")))  # > nginx's upstream keepalive_timeout
forwarded_allow_ips = os.environ.get(ENV_PREFIX + "FORWARDED_ALLOW_IPS") or "127.0.0.1"
limit_request_line = int(setting("limit_request_line"))
limit_request_fields = int(setting("limit_request_fields"))
limit_request_field_size = int(setting("limit_request_field_size"))
reload = parse("reload", setting("reload"))  # gunicorn's own reloader (make dev)
# wsgistack's --health-path, answered here before the app (post_worker_init)
health_path = os.environ.get(ENV_PREFIX + "HEALTH_PATH") or None
worker_tmp_dir = "/dev/shm"
accesslog = "-"
errorlog = "-"
control_socket_disable = True  # runtime control goes through supervisorctl signals


def on_starting(server):
    from wsgistack.metrics import files

    files.wipe_dir()


def post_worker_init(worker):
    """Wrap the app: http_server_request_duration_seconds and friends, per request."""
    from wsgistack.metrics import instruments as metrics

    app = worker.wsgi

    def instrumented(environ, start_response):
        if health_path is not None and environ.get("PATH_INFO") == health_path:
            environ[metrics.ROUTE_ENVIRON_KEY] = health_path  # its own http_route
            app_or_health = answer_health
        else:
            app_or_health = app
        started = time.perf_counter()
        seen = {"status": "500"}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = status[:3]
            return start_response(status, headers, exc_info)

        metrics.ACTIVE_REQUESTS.inc()
        result = app_or_health(environ, recording_start_response)
        try:
            yield from result
        finally:
            if hasattr(result, "close"):
                result.close()
            metrics.ACTIVE_REQUESTS.dec()
            method = metrics.method_label(environ["REQUEST_METHOD"])
            route = metrics.route_label(environ)
            metrics.REQUEST_DURATION.labels(method, seen["status"], route).observe(
                time.perf_counter() - started
            )

    worker.wsgi = instrumented


def answer_health(environ, start_response):
    """The health path's answer: the worker has imported the app."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Cache-Control", "no-store"), ("Content-Length", "3")],
    )
    return [b"ok\n"]


def child_exit(server, worker):
    from wsgistack.metrics import instruments as metrics

    metrics.mark_worker_dead(worker.pid)

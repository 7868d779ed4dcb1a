"""wsgistack: a pre-fork HTTP/1.1 WSGI server (PEP 3333).

Modules, one job each:
    __main__  the ``wsgistack`` command
    config    the settings table: flags > environment > config file > defaults
    arbiter   the master process: forks workers, reaps, signals, heartbeats
    sockets   listening sockets (TCP, Unix)
    worker    a worker process: event loop, accept back-pressure, keep-alive
    wsgi      PEP 3333: environ, wsgi.input, the file wrapper, running the app
    heartbeat shared-memory worker heartbeats
    logs      error log and access log
    http/     request parser, response writer, client connection
    metrics/  Prometheus instruments, per-worker files, the exporter
"""

__version__ = "0.2.0"
SERVER_SOFTWARE = "wsgistack"  # the Server header: no version disclosed

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
    _hotpath  the per-request modules compiled or not (WSGISTACK_NO_EXTENSIONS)
"""

from . import _hotpath

__version__ = "0.2.0"
SERVER_SOFTWARE = "wsgistack"  # the Server header: no version disclosed

# Before any per-request module is imported: WSGISTACK_NO_EXTENSIONS=1 loads their source.
_hotpath.install()

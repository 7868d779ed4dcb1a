"""wsgistack's pre-fork HTTP/1.1 WSGI server (PEP 3333).

Modules, one job each:
    config    settings from flags > environment > config file > defaults
    arbiter   the master process: binds, forks workers, reaps, signals, heartbeats
    worker    a worker process: event loop, accept back-pressure, keep-alive
    protocol  HTTP/1.1 message framing on top of the httptools (llhttp) parser
    wsgi      PEP 3333 glue: environ, start_response, wsgi.input, file wrapper
    metrics   prometheus-client instruments (multiprocess mode)
    multiprocess  the metrics directory: wiped at start, dead workers archived
    exporter  the process that serves all workers' metrics on /metrics
    heartbeat shared-memory worker heartbeats
    connection  a client connection: socket, peer, parser
    logs      error log and JSON access log
"""

__version__ = "0.1.0"
SERVER_SOFTWARE = "wsgistack"  # the Server header: no version disclosed

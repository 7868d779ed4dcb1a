"""The error log (levels, human-readable) and the access log (one line a request).

Access log styles (``--access-log-style``):

``json`` (default)
    one JSON object a line: ``time`` (RFC 3339, UTC), ``pid``, ``remote_addr``,
    ``method``, ``uri``, ``protocol``, ``status``, ``request_bytes``,
    ``response_bytes``, ``duration_seconds``, ``request_id`` (X-Request-ID),
    ``referer``, ``user_agent``; a request refused before the app (400, 408, 413…)
    has ``remote_addr``, ``status`` and ``refused: true``.
``combined``
    the Apache/nginx combined log format, which log tools parse as is:
    ``remote - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 2326 "referer" "agent"``
    (``-`` for a missing field and for 0 response bytes).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

error_log = logging.getLogger("server.error")
access_log = logging.getLogger("server.access")


def _handler(target: str, default_stream) -> logging.Handler:
    if target == "-":
        return logging.StreamHandler(default_stream)
    return logging.FileHandler(target)


_style = "json"


def setup(
    errorlog: str, log_level: str, access_logfile: str | None, access_log_style: str = "json"
) -> None:
    """Configure both loggers; ``-`` means stderr (errors) or stdout (access).

    ``access_log_style`` is ``json`` or ``combined`` (see the module docstring).
    """
    global _style
    _style = access_log_style
    handler = _handler(errorlog, sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S %z"
        )
    )
    error_log.handlers[:] = [handler]
    error_log.setLevel(log_level.upper())
    error_log.propagate = False
    access_log.handlers.clear()
    access_log.propagate = False
    if access_logfile:
        handler = _handler(access_logfile, sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
    else:
        access_log.setLevel(logging.CRITICAL + 1)


def reopen() -> None:
    """Reopen log files (SIGUSR1, after logrotate moved them); streams are kept."""
    for logger in (error_log, access_log):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()  # FileHandler opens the path again on the next record


def access_enabled() -> bool:
    """True when an access log is configured."""
    return access_log.isEnabledFor(logging.INFO)


def access(fields: dict) -> None:
    """Write one access log line for ``fields`` in the configured style."""
    if access_log.isEnabledFor(logging.INFO):
        now = time.time()
        access_log.info(combined(fields, now) if _style == "combined" else as_json(fields, now))


def as_json(fields: dict, now: float) -> str:
    """The json style: ``fields`` plus time (RFC 3339, UTC, milliseconds) and pid."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return json.dumps({"time": stamp, "pid": os.getpid(), **fields}, separators=(",", ":"))


def _quoted(value: str) -> str:
    """A combined-format quoted field: '-' when empty, quotes and backslashes escaped."""
    if not value:
        return '"-"'
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def combined(fields: dict, now: float) -> str:
    """The combined style (Apache's and nginx's "combined" log format), local time."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
    if fields.get("method"):
        line = f"{fields['method']} {fields.get('uri', '')} {fields.get('protocol', '')}"
    else:
        line = ""  # refused before a request line could be read
    size = fields.get("response_bytes") or "-"
    return (
        f"{fields.get('remote_addr') or '-'} - - [{stamp}] {_quoted(line)} "
        f"{fields.get('status', '-')} {size} {_quoted(fields.get('referer', ''))} "
        f"{_quoted(fields.get('user_agent', ''))}"
    )

"""The error log (levels, human-readable) and the access log (one JSON object a line)."""

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


def setup(errorlog: str, log_level: str, access_logfile: str | None) -> None:
    """Configure both loggers; ``-`` means stderr (errors) or stdout (access)."""
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
    """Write one access log line: ``fields`` plus time (RFC 3339, UTC) and pid."""
    if access_log.isEnabledFor(logging.INFO):
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        access_log.info(
            json.dumps({"time": stamp, "pid": os.getpid(), **fields}, separators=(",", ":"))
        )

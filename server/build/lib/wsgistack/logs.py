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

Each access log line is written and flushed on its own, by ``AccessLog``
rather than a ``logging`` logger: a LogRecord (the caller's frame, thread and
process names) cost more than formatting the line itself.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

error_log = logging.getLogger("wsgistack.error")


class AccessLog:
    """Where access log lines go: a text stream, or a file opened for appending.

    ``write`` adds the newline and flushes, one line at a time, under a lock
    (the app's threads share it). A file is opened at once (OSError if it
    can't be) and again on the first write after ``reopen`` (logrotate moved
    it). A line that cannot be written (a full disk, a closed stdout) is
    reported on the error log and serving goes on, as ``logging`` handlers do.
    """

    def __init__(self, stream: TextIO | None = None, path: str | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stream = stream if path is None else self._open()

    def _open(self) -> TextIO:
        assert self._path is not None  # only a file is opened
        return open(self._path, "a", encoding="utf-8")  # closed by reopen()

    def write(self, line: str) -> None:
        """Append ``line`` (a str without its newline) and flush; never raises OSError."""
        with self._lock:
            try:
                stream = self._stream
                if stream is None:
                    stream = self._stream = self._open()
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError) as exc:
                error_log.error("cannot write the access log: %s", exc)

    def reopen(self) -> None:
        """Close a file (it is opened again on the next write); keep a stream."""
        if self._path is None:
            return
        with self._lock:
            if self._stream is not None:
                try:
                    self._stream.close()
                except OSError:
                    pass
                self._stream = None


_access: AccessLog | None = None  # None: no access log


def _handler(target: str, default_stream: TextIO) -> logging.Handler:
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
    global _style, _access
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
    if _access is not None:
        _access.reopen()  # closes a file
    if not access_logfile:
        _access = None
    elif access_logfile == "-":
        _access = AccessLog(stream=sys.stdout)
    else:
        _access = AccessLog(path=access_logfile)


def reopen() -> None:
    """Reopen log files (SIGUSR1, after logrotate moved them); streams are kept."""
    for handler in error_log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.close()  # FileHandler opens the path again on the next record
    if _access is not None:
        _access.reopen()


def access_enabled() -> bool:
    """True when an access log is configured."""
    return _access is not None


# An access log line's fields: name -> str, int or float as JSON has them. Any, as a
# value read from the environ may be whatever the application put there.
AccessFields = dict[str, Any]


def access(fields: AccessFields) -> None:
    """Write one access log line for ``fields`` (name -> value) in the configured style."""
    if _access is not None:
        now = time.time()
        _access.write(combined(fields, now) if _style == "combined" else as_json(fields, now))


# One encoder for every line (json.dumps() builds one per call when given separators);
# the fields are flat, so there is no cycle to check for.
_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_json_string = json.encoder.encode_basestring_ascii  # json.dumps' escaping of a str, quoted
_pid = os.getpid()  # renewed in every forked child: os.getpid() is a system call


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _per_second(layout: str, convert: Callable[[float], time.struct_time]) -> Callable[[int], str]:
    """``time.strftime(layout, convert(second))``, formatted once per second."""
    cache: list[Any] = [-1, ""]  # [the second, its stamp]

    def stamp(second: int) -> str:
        if cache[0] != second:
            cache[:] = second, time.strftime(layout, convert(second))
        text: str = cache[1]
        return text

    return stamp


_utc_stamp = _per_second("%Y-%m-%dT%H:%M:%S", time.gmtime)
_local_stamp = _per_second("%d/%b/%Y:%H:%M:%S %z", time.localtime)


def access_request(
    remote_addr: str,
    method: str,
    uri: str,
    protocol: str,
    status: int,
    request_bytes: int,
    response_bytes: int,
    duration: float,
    request_id: str,
    referer: str,
    user_agent: str,
) -> None:
    """Write the access log line of an answered request (``duration`` in seconds).

    The line is ``access()``'s for these fields, ``duration_seconds`` rounded to
    microseconds. The json style composes it without building the dict (a third
    of the cost): each str escaped by json's own escaper, the numbers as
    json.dumps writes them; a value of another type (an app may rewrite its
    environ) takes the dict path.
    """
    if _access is None:
        return
    now = time.time()
    duration = round(duration, 6)
    line = None
    if _style == "json":
        q = _json_string
        try:
            line = (
                f'{{"time":"{_utc_stamp(int(now))}.{int(now % 1 * 1000):03d}Z","pid":{_pid},'
                f'"remote_addr":{q(remote_addr)},"method":{q(method)},"uri":{q(uri)},'
                f'"protocol":{q(protocol)},"status":{status},"request_bytes":{request_bytes},'
                f'"response_bytes":{response_bytes},"duration_seconds":{duration!r},'
                f'"request_id":{q(request_id)},"referer":{q(referer)},'
                f'"user_agent":{q(user_agent)}}}'
            )
        except TypeError:  # not a str
            pass
    if line is None:  # the combined style, or an app left a value that is not a str
        # Whatever the app left in its environ, the line is written: as text in the
        # combined style; in json, values json has a type for stay, others as text.
        text = _text if _style == "combined" else _jsonable
        fields: AccessFields = {
            "remote_addr": text(remote_addr),
            "method": text(method),
            "uri": text(uri),
            "protocol": text(protocol),
            "status": status,
            "request_bytes": request_bytes,
            "response_bytes": response_bytes,
            "duration_seconds": duration,
            "request_id": text(request_id),
            "referer": text(referer),
            "user_agent": text(user_agent),
        }
        line = combined(fields, now) if _style == "combined" else as_json(fields, now)
    _access.write(line)


def as_json(fields: AccessFields, now: float) -> str:
    """The json style: ``fields`` plus time (RFC 3339, UTC, milliseconds) and pid."""
    stamp = f"{_utc_stamp(int(now))}.{int(now % 1 * 1000):03d}Z"
    return _JSON.encode({"time": stamp, "pid": _pid, **fields})


# C0 controls, DEL and C1 controls (U+0085 NEL, U+009B CSI, ...): written as \xHH,
# as nginx escapes its log variables, so no line can be forged or a terminal driven.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(value: str) -> str:
    """``value`` with control characters escaped as ``\\xHH`` (for log lines)."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02X}", value)


def _text(value: object) -> str:
    """A log field as text, whatever an application left in its environ; never raises."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return "-"


def _jsonable(value: object) -> Any:
    """A log field for the json style: None, bool, int, float and str as they are
    (json has types for them), anything else as text (``_text``)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return _text(value)


def _quoted(value: str) -> str:
    """A combined-format quoted field: '-' when empty, quotes, backslashes and
    control characters escaped."""
    if not value:
        return '"-"'
    return '"' + printable(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def combined(fields: AccessFields, now: float) -> str:
    """The combined style (Apache's and nginx's "combined" log format), local time."""
    stamp = _local_stamp(int(now))
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

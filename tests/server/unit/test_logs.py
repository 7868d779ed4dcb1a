"""server.logs: the error log, both access log styles, and reopening files."""

from __future__ import annotations

import json
import logging
import os
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsgistack import logs

FIELDS = {
    "remote_addr": "203.0.113.7",
    "method": "GET",
    "uri": "/a?b=1",
    "protocol": "HTTP/1.1",
    "status": 200,
    "request_bytes": 0,
    "response_bytes": 1234,
    "duration_seconds": 0.012345,
    "request_id": "abc-123",
    "referer": 'https://ref.example/"q"',
    "user_agent": "curl/8",
}
COMBINED = re.compile(
    r"^(?P<addr>\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "
    r'"(?P<line>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-) "(?P<ref>(?:[^"\\]|\\.)*)" '
    r'"(?P<agent>(?:[^"\\]|\\.)*)"$'
)


@pytest.fixture(autouse=True)
def reset_logging():
    yield
    logs.setup("-", "info", None)


def test_json_style(tmp_path):
    path = tmp_path / "access.log"
    logs.setup("-", "info", str(path))
    assert logs.access_enabled()
    logs.access(FIELDS)
    line = json.loads(path.read_text())
    assert line["request_id"] == "abc-123"
    assert (line["status"], line["response_bytes"]) == (200, 1234)
    assert line["duration_seconds"] == 0.012345  # seconds, not milliseconds
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert isinstance(line["pid"], int)


def test_combined_style(tmp_path):
    path = tmp_path / "access.log"
    logs.setup("-", "info", str(path), "combined")
    logs.access(FIELDS)
    logs.access({"remote_addr": "198.51.100.2", "status": 408, "refused": True})
    first, refused = path.read_text().splitlines()
    match = COMBINED.match(first)
    assert match, first
    assert match["line"] == "GET /a?b=1 HTTP/1.1"
    assert (match["status"], match["size"]) == ("200", "1234")
    assert match["ref"] == 'https://ref.example/\\"q\\"'  # quotes escaped
    match = COMBINED.match(refused)
    assert match, refused
    assert (match["line"], match["status"], match["size"]) == ("-", "408", "-")


def test_no_access_log_when_unset(tmp_path):
    logs.setup("-", "info", None)
    assert not logs.access_enabled()


def test_error_log_level_and_file(tmp_path):
    path = tmp_path / "error.log"
    logs.setup(str(path), "warning", None)
    logs.error_log.info("hidden")
    logs.error_log.warning("shown")
    text = path.read_text()
    assert "hidden" not in text
    assert re.search(r"^\[.*\] \[\d+\] \[WARNING\] shown$", text, re.M)


def test_reopen_after_rotation(tmp_path):
    path = tmp_path / "error.log"
    logs.setup(str(path), "info", None)
    logs.error_log.info("before")
    path.rename(tmp_path / "error.log.1")
    logs.reopen()
    logs.error_log.info("after")
    assert "after" in path.read_text()
    assert "after" not in (tmp_path / "error.log.1").read_text()
    assert all(isinstance(h, logging.Handler) for h in logs.error_log.handlers)


def test_an_access_line_that_cannot_be_written_is_reported_not_raised(tmp_path):
    error_path = tmp_path / "error.log"
    logs.setup(str(error_path), "info", "-")

    class Closed:
        def write(self, text):
            raise OSError(32, "Broken pipe")

    logs._access = logs.AccessLog(stream=Closed())
    logs.access(FIELDS)  # serving goes on
    assert "cannot write the access log: [Errno 32] Broken pipe" in error_path.read_text()


def test_an_access_log_file_that_cannot_be_opened_fails_at_setup(tmp_path):
    with pytest.raises(OSError):
        logs.setup("-", "info", str(tmp_path / "missing-dir" / "access.log"))


@pytest.mark.parametrize("now", [1763856000.0, 1763856000.9996, 1763856001.0005, 1763859599.5])
def test_lines_are_those_of_json_dumps_and_strftime_at_any_time(now):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    expected = {"time": stamp, "pid": os.getpid(), **FIELDS}
    assert logs.as_json(FIELDS, now) == json.dumps(expected, separators=(",", ":"))
    local = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
    assert f" - - [{local}] " in logs.combined(FIELDS, now)


class Lines:
    """An AccessLog stand-in that keeps the lines."""

    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)


def _request_line(style, fields, monkeypatch):
    lines = Lines()
    monkeypatch.setattr(logs, "_access", lines)
    monkeypatch.setattr(logs, "_style", style)
    monkeypatch.setattr(logs.time, "time", lambda: 1763856000.25)
    args = dict(fields)
    args["duration"] = args.pop("duration_seconds")
    logs.access_request(**args)
    return lines.lines[0]


_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    strings=st.fixed_dictionaries(
        {k: _TEXT for k in ("remote_addr", "method", "uri", "request_id", "referer", "user_agent")}
    ),
    numbers=st.tuples(st.integers(100, 599), st.integers(0, 2**40), st.integers(0, 2**40)),
    duration=st.floats(0, 1e5),
)
def test_a_request_line_is_what_access_writes_for_the_same_fields(
    monkeypatch, strings, numbers, duration
):
    fields = {**FIELDS, **strings, "duration_seconds": duration}
    fields["status"], fields["request_bytes"], fields["response_bytes"] = numbers
    expected = {**fields, "duration_seconds": round(duration, 6)}
    for style, write in (("json", logs.as_json), ("combined", logs.combined)):
        assert _request_line(style, fields, monkeypatch) == write(expected, 1763856000.25)


def test_a_request_line_with_a_value_the_app_made_no_str_is_still_json(monkeypatch):
    fields = {**FIELDS, "remote_addr": None, "user_agent": 7}
    line = json.loads(_request_line("json", fields, monkeypatch))
    assert (line["remote_addr"], line["user_agent"], line["status"]) == (None, 7, 200)

"""loadtest.bench.apps: the Flask and Django hello worlds of the flask-hello and
django-hello scenarios, called as a WSGI server would (wsgiref's environ defaults and
its PEP 3333 validator), and the answer the bench checks them by."""

from __future__ import annotations

import importlib
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from loadtest.bench.scenarios import SCENARIOS, answer_ok


def call(app, path):
    """``app`` through wsgiref's validator for GET ``path``: (status, headers, body)."""
    environ = {"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": ""}
    setup_testing_defaults(environ)  # Host 127.0.0.1, as the bench's requests
    started = []
    body = validator(app)(environ, lambda status, headers: started.append((status, headers)))
    try:
        data = b"".join(body)
    finally:
        body.close()
    [(status, headers)] = started
    return status, dict(headers), data


@pytest.mark.parametrize(
    ("scenario", "greeting"),
    [("flask-hello", b"Hello from Flask!\n"), ("django-hello", b"Hello from Django!\n")],
)
def test_the_app_answers_its_greeting(scenario, greeting):
    module, _, name = SCENARIOS[scenario].app.partition(":")
    app = getattr(importlib.import_module(module), name)
    status, headers, body = call(app, "/")
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    assert body == greeting and headers["Content-Length"] == str(len(greeting))
    assert answer_ok(SCENARIOS[scenario], 200, body)  # what the bench checks before a run
    assert call(app, "/nowhere")[0].startswith("404")  # one route only

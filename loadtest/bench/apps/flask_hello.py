"""Flask hello world (``loadtest.bench.apps.flask_hello:app``): one route, GET / answers
GREETING as text/plain, through Flask's (Werkzeug's) request and response objects."""

from __future__ import annotations

from flask import Flask, Response

GREETING = b"Hello from Flask!\n"

app = Flask(__name__)


@app.get("/")
def hello() -> Response:
    """GREETING, 200, text/plain."""
    return Response(GREETING, mimetype="text/plain")

"""A small Flask app for the compatibility tests, served as
``tests.server.frameworks.apps.flask_app:application``."""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, jsonify, request, send_file, url_for

from tests.server.frameworks.apps.validated import sized_reads, validated

app = Flask(__name__)
DATA = os.environ["COMPAT_DATA"]  # a file the tests write


@app.get("/hello")
def hello():
    return Response("Hello from Flask\n", mimetype="text/plain")


@app.post("/echo")
def echo():
    body = request.get_data()
    return jsonify(
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        form=request.form.to_dict(),
        content_type=request.content_type,
    )


@app.get("/stream")
def stream():
    return Response((f"part {i}\n" for i in range(3)), mimetype="text/plain")


@app.get("/file")
def file():
    return send_file(DATA, mimetype="application/octet-stream")


@app.get("/url")
def url():
    return jsonify(url=url_for("hello"), script_root=request.script_root, path=request.path)


@app.get("/error")
def error():
    raise RuntimeError("flask view fails on purpose")


# Werkzeug reads wsgi.input with read() and no size (see validated.py).
application = validated(sized_reads(app))

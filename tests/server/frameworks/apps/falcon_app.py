"""A small Falcon app for the compatibility tests, served as
``tests.server.frameworks.apps.falcon_app:application``."""

from __future__ import annotations

import hashlib
import os

import falcon

from tests.server.frameworks.apps.validated import validated

DATA = os.environ["COMPAT_DATA"]  # a file the tests write


class Hello:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello from Falcon\n"


class Echo:
    def on_post(self, req, resp):
        body = req.bounded_stream.read()
        resp.media = {
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "form": {},
            "content_type": req.content_type,
        }


class Stream:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (f"part {i}\n".encode() for i in range(3))


class File:
    def on_get(self, req, resp):
        resp.content_type = "application/octet-stream"
        resp.set_stream(open(DATA, "rb"), os.path.getsize(DATA))


class Url:
    def on_get(self, req, resp):
        resp.media = {"url": req.prefix + "/hello", "script_root": req.root_path}


class Error:
    def on_get(self, req, resp):
        raise RuntimeError("falcon view fails on purpose")


app = falcon.App()
app.add_route("/hello", Hello())
app.add_route("/echo", Echo())
app.add_route("/stream", Stream())
app.add_route("/file", File())
app.add_route("/url", Url())
app.add_route("/error", Error())

application = validated(app)

"""Request and response bodies across the proxy: uploads, streaming, limits."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

pytestmark = pytest.mark.integration


def test_10_mib_upload_arrives_intact(stack):
    body = os.urandom(10 * 1024 * 1024)
    with stack.client() as client:
        response = client.post("/api/upload", content=body)
    assert response.status_code == 200
    assert response.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_chunked_upload_arrives_intact(stack):
    pieces = [os.urandom(256 * 1024) for _ in range(12)]  # 3 MiB, no Content-Length
    with stack.client() as client:
        response = client.post("/api/upload", content=iter(pieces))
    whole = b"".join(pieces)
    assert response.status_code == 200
    assert response.json() == {"bytes": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_stream_arrives_complete_and_in_order(stack):
    chunks, size = 200, 1024
    with stack.client() as client:
        response = client.get(f"/api/stream?chunks={chunks}&size={size}")
    assert response.status_code == 200
    assert len(response.content) == chunks * size
    numbers = [int(n) for n in re.findall(rb"chunk (\d+)", response.content)]
    assert numbers == list(range(chunks))


def test_unknown_path_is_404_json(stack):
    with stack.client() as client:
        response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "not found"


def test_bad_parameter_is_400_json(stack):
    with stack.client() as client:
        response = client.get("/api/sleep?ms=abc")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "ms" in response.json()["error"]


def test_body_over_the_limit_gets_413_from_nginx(stack):
    limit = int(stack.env["LIMIT_REQUEST_BODY"])
    before = stack.request_count("POST", 413) + stack.request_count("POST", 200)
    with stack.client() as client:
        response = client.post("/api/upload", content=b"x" * (limit + 1))
    assert response.status_code == 413
    assert response.headers["server"] == "nginx"
    # nginx refused it: the app never saw the request.
    assert stack.request_count("POST", 413) + stack.request_count("POST", 200) == before


def test_body_at_the_limit_is_accepted(stack):
    limit = int(stack.env["LIMIT_REQUEST_BODY"])
    with stack.client() as client:
        response = client.post("/api/upload", content=b"y" * limit)
    assert response.status_code == 200
    assert response.json()["bytes"] == limit

"""Compression at nginx (COMPRESSION; nginx/templates/compression.conf.template):
brotli first, else gzip, for text above the minimum length, never for images
nor for an answer the app marked Cache-Control: no-transform; and the static
files' Cache-Control (static-cache.conf.template). Bodies are read as sent (not
decoded by the client) and decoded here."""

from __future__ import annotations

import gzip
import json
import subprocess

import brotli
import httpx
import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration

DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}
STATIC = ROOT / "app/wsgistack_demo/static"
FINGERPRINTED = "noise.169c90dfb55e.png"  # the demo's: a content hash in its name
MIN_LENGTH = 256  # gzip_min_length and brotli_min_length


def fetch(stack, path: str, accept: str, **params: str) -> tuple[httpx.Headers, bytes]:
    """(headers, body as nginx sent it) of a GET with this Accept-Encoding."""
    with stack.client() as client:
        request = client.build_request(
            "GET", path, params=params, headers={"Accept-Encoding": accept}
        )
        response = client.send(request, stream=True)
        try:
            assert response.status_code == 200, response.status_code
            return response.headers, b"".join(response.iter_raw())
        finally:
            response.close()


def varies_on_accept_encoding(headers: httpx.Headers) -> bool:
    return "accept-encoding" in headers.get("vary", "").lower().replace(" ", "").split(",")


@pytest.mark.parametrize(
    ("accept", "encoding"), [("br, gzip", "br"), ("gzip, br", "br"), ("gzip", "gzip")]
)
@pytest.mark.parametrize("path", ["/static/index.html", "/api/stream"])
def test_text_is_compressed_brotli_first_and_decodes_to_the_identity_body(
    stack, path, accept, encoding
):
    """A static page (with a Content-Length) and the app's stream (without one)."""
    plain_headers, plain = fetch(stack, path, "identity")
    headers, body = fetch(stack, path, accept)
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == encoding
    assert DECODE[encoding](body) == plain
    assert len(body) < len(plain)
    assert varies_on_accept_encoding(headers)
    assert varies_on_accept_encoding(plain_headers)  # a cache must not serve it to others


def test_the_apps_json_is_compressed(stack):
    headers, body = fetch(stack, "/api/echo", "gzip, deflate, br")
    assert headers["content-type"] == "application/json"
    assert headers["content-encoding"] == "br"
    assert json.loads(brotli.decompress(body))["path"] == "/api/echo"


def test_an_image_is_not_recompressed(stack):
    image = (STATIC / FINGERPRINTED).read_bytes()
    assert len(image) > MIN_LENGTH  # long enough: its type alone keeps it as it is
    headers, body = fetch(stack, f"/static/{FINGERPRINTED}", "br, gzip")
    assert headers["content-type"] == "image/png"
    assert "content-encoding" not in headers
    assert body == image
    # while a page from the same folder is compressed
    assert fetch(stack, "/static/index.html", "br, gzip")[0]["content-encoding"] == "br"


@pytest.mark.parametrize(
    ("short", "long"), [("/healthz", "/api/echo"), ("/static/style.css", "/static/index.html")]
)
def test_responses_under_the_minimum_length_are_not_compressed(stack, short, long):
    """An app's JSON and a static file, each next to a longer one from the same place."""
    headers, body = fetch(stack, short, "br, gzip")
    assert int(headers["content-length"]) == len(body) < MIN_LENGTH
    assert "content-encoding" not in headers
    assert fetch(stack, long, "br, gzip")[0]["content-encoding"] == "br"


@pytest.mark.parametrize("accept", ["br, gzip", "gzip"])
@pytest.mark.parametrize(
    "cache_control", ["no-transform", "private, No-Transform", "no-transform,max-age=0"]
)
def test_an_answer_marked_no_transform_goes_as_the_app_wrote_it(stack, accept, cache_control):
    """RFC 9111 §5.2.2.6, through the Lua header filter in compression.conf."""
    headers, body = fetch(stack, "/api/echo", accept, cache_control=cache_control)
    assert headers["cache-control"] == cache_control
    assert "content-encoding" not in headers
    assert json.loads(body)["args"] == {"cache_control": [cache_control]}


@pytest.mark.parametrize("cache_control", ["no-store", "no-transformed", "x-no-transform"])
def test_other_cache_directives_leave_the_answer_compressed(stack, cache_control):
    headers, body = fetch(stack, "/api/echo", "br, gzip", cache_control=cache_control)
    assert headers["content-encoding"] == "br" and varies_on_accept_encoding(headers)
    assert json.loads(brotli.decompress(body))["args"] == {"cache_control": [cache_control]}


def test_fingerprinted_static_names_are_kept_a_year(stack):
    headers, _ = fetch(stack, f"/static/{FINGERPRINTED}", "identity")
    assert headers.get_list("cache-control") == ["public, max-age=31536000, immutable"]
    assert "expires" not in headers
    # A name of that shape that is not a file is the app's answer, with its own headers.
    with stack.client() as client:
        missing = client.get("/static/missing.3f9a2c1b.css")
    assert missing.status_code == 404
    assert "cache-control" not in missing.headers


def test_other_static_names_are_kept_static_max_age(stack):
    headers, _ = fetch(stack, "/static/style.css", "identity")
    assert headers.get_list("cache-control") == [f"public, max-age={stack.env['STATIC_MAX_AGE']}"]
    assert "expires" not in headers


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("COMPRESSION", "maybe", "COMPRESSION must be on or off, got 'maybe'"),
        ("STATIC_MAX_AGE", "1h", "STATIC_MAX_AGE must be a whole number, got '1h'"),
    ],
)
def test_the_proxy_refuses_a_bad_setting_with_one_line(stack, variable, value, error):
    image = stack.container("proxy").image.id
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-e", f"{variable}={value}", image],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (2, f"entrypoint: {error}\n")


@pytest.fixture
def compression_off(stack):
    """The proxy recreated with COMPRESSION=off; the .env value restored after."""

    def proxy_with(**env: str) -> None:
        result = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120, **env)
        assert result.returncode == 0, result.stderr

    assert fetch(stack, "/api/echo", "br, gzip")[0]["content-encoding"] == "br"  # on before
    proxy_with(COMPRESSION="off")
    yield
    proxy_with()


@pytest.mark.disruptive
def test_compression_off_serves_identity(stack, compression_off):
    for path in ("/static/index.html", "/api/echo"):
        headers, body = fetch(stack, path, "br, gzip")
        assert "content-encoding" not in headers, path
        assert int(headers["content-length"]) == len(body) > MIN_LENGTH, path

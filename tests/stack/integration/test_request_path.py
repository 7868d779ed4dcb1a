"""Client → nginx → our WSGI server → app, checked at every hop."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_https_greeting_through_every_hop(stack):
    with stack.client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello from the WSGI stack!\n"
    assert response.headers["server"] == "nginx"  # server_tokens off: no version
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_request_id_round_trip(stack):
    request_id = f"it-{uuid.uuid4()}"
    with stack.client() as client:
        response = client.get("/api/echo", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    assert response.json()["headers"]["X-Request-Id"] == request_id


def test_request_id_generated_by_nginx_reaches_the_app(stack):
    with stack.client() as client:
        response = client.get("/api/echo")
    seen_by_app = response.json()["headers"]["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", seen_by_app)
    assert response.headers["x-request-id"] == seen_by_app


def test_plain_http_redirects_to_https(stack):
    response = httpx.get(f"{stack.http}/some/path?q=1", follow_redirects=False)
    assert response.status_code in (301, 308)
    assert response.headers["location"] == f"{stack.https}/some/path?q=1"


def test_plain_http_health_location_is_not_redirected(stack):
    response = httpx.get(f"{stack.http}/nginx-health", follow_redirects=False)
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_http2_negotiated_by_alpn(stack):
    with stack.client(http2=True) as client:
        response = client.get("/")
    assert response.http_version == "HTTP/2"
    assert response.text == "Hello from the WSGI stack!\n"


def test_http11_still_served(stack):
    with stack.client() as client:
        response = client.get("/")
    assert response.http_version == "HTTP/1.1"
    assert response.status_code == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_accepted(stack, version):
    context = stack.ssl_context()
    context.minimum_version = context.maximum_version = version
    port = stack.https_port
    with socket.create_connection(("localhost", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


def test_tls_11_refused_by_the_server(stack):
    port = stack.https_port
    # SECLEVEL=0 lets this client offer TLS 1.1, so a refusal is the server's.
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"localhost:{port}",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0
    assert "alert protocol version" in result.stderr
    assert "Cipher is (NONE)" in result.stdout


def test_echo_sees_client_address_and_https_through_the_proxy(stack):
    with stack.client() as client:
        echo = client.get("/api/echo?x=1").json()
    proxy = stack.container("proxy")
    proxy_addresses = {
        network["IPAddress"] for network in proxy.attrs["NetworkSettings"]["Networks"].values()
    }
    assert echo["scheme"] == "https"
    assert echo["headers"]["X-Forwarded-Proto"] == "https"
    forwarded_for = [a.strip() for a in echo["headers"]["X-Forwarded-For"].split(",")]
    assert echo["remote_addr"] == forwarded_for[-1]  # the address nginx saw
    assert echo["remote_addr"] not in proxy_addresses  # not the proxy's own address
    assert echo["headers"]["Host"] == stack.https.removeprefix("https://")
    assert echo["args"] == {"x": ["1"]}


def test_static_files_served_by_nginx(stack):
    with stack.client() as client:
        response = client.get("/static/index.html")
    assert response.status_code == 200
    assert "<h1>wsgistack</h1>" in response.text
    assert response.headers["server"] == "nginx"

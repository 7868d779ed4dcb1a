"""Security headers on every response nginx sends, whoever made it (the app,
nginx's static files, nginx's own errors), and no software banner from the
app: the app's Server and X-Powered-By stop at nginx."""

from __future__ import annotations

import httpx
import pytest

from tests.support.rawhttp import exchange_in_container, first_response, parse_responses, request

pytestmark = pytest.mark.integration

HSTS = "max-age=63072000; includeSubDomains"
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
}
STATIC_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _check(status: int, headers: list[tuple[str, str]], expect_status: int, hsts: bool = True):
    assert status == expect_status
    values = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    for name, value in {**COMMON, **({"strict-transport-security": HSTS} if hsts else {})}.items():
        assert values.get(name) == [value], (name, values.get(name))
    if not hsts:
        assert "strict-transport-security" not in values  # ignored over plain HTTP anyway
    assert values["server"] == ["nginx"]  # server_tokens off: no version
    assert "x-powered-by" not in values
    return values


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),  # the app
        ("/api/echo", 200),  # the app, which sends X-Powered-By
        ("/no/such/page", 404),  # the app's error
        ("/api/status?code=503", 503),  # the app's server error
        ("/static/style.css", 200),  # nginx's static file
        ("/static/missing.css", 404),  # not a static file: the app's 404 (nginx's fallback)
    ],
)
def test_every_https_response_has_the_security_headers(stack, path, status, http2):
    with stack.client(http2=http2) as client:
        response = client.get(path)
    _check(response.status_code, list(response.headers.multi_items()), status)


def test_static_pages_have_a_conservative_csp(stack):
    with stack.client() as client:
        response = client.get("/static/index.html")
    values = _check(response.status_code, list(response.headers.multi_items()), 200)
    assert values["content-security-policy"] == [STATIC_CSP]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (request("GET", "/" + "a" * 5000), 414),
        (request("GET", "/", [("X-Big", "b" * 9000)]), 431),
        (request("POST", "/api/upload", [("Content-Length", str(1 << 40))]), 413),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n", 400),
    ],
    ids=["414", "431", "413", "400"],
)
def test_nginx_refusals_have_the_security_headers(stack, payload, status):
    response = first_response(*stack.exchange(payload))
    _check(response.status, response.headers, status)


def test_plain_http_redirect_has_the_security_headers_but_not_hsts(stack):
    response = httpx.get(f"{stack.http}/", follow_redirects=False)
    _check(response.status_code, list(response.headers.multi_items()), 308, hsts=False)


def test_the_app_banner_stops_at_nginx(stack):
    """The server and the app do announce themselves; nginx strips it."""
    ((data, closed),) = exchange_in_container(
        stack.container("app"), [request("GET", "/api/echo", [("Connection", "close")])]
    )
    (direct,), problem = parse_responses(data, closed)
    assert problem is None
    assert direct.header_values("server")[0].startswith("wsgistack")
    assert direct.header_values("x-powered-by") == ["wsgistack-demo"]
    through = first_response(
        *stack.exchange(request("GET", "/api/echo", [("Connection", "close")]))
    )
    assert through.header_values("server") == ["nginx"]
    assert through.header_values("x-powered-by") == []

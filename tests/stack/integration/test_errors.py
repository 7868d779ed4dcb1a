"""Malformed requests are refused with 400 and poison nothing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Without Colon\r\n\r\n",
    b"POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
]


@pytest.mark.parametrize("payload", MALFORMED, ids=["no-colon", "bad-content-length", "te-and-cl"])
def test_malformed_request_gets_400_and_close(stack, payload):
    received, closed = stack.exchange(payload, idle_timeout=10)
    assert received.startswith(b"HTTP/1.1 400 "), received[:200]
    assert closed
    with stack.client() as client:  # a new connection is served normally
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello from the WSGI stack!\n"

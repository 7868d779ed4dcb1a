"""nginx's default server for unknown hosts (nginx/templates/default-server.conf.template),
over raw sockets: a Host that is none of SERVER_NAME's names (or the internal
ones) gets its connection closed without a response (444, counted by mtail), a
TLS server name that is none of them gets the handshake refused (counted by
mtail too); the names, an IP literal without a server name, the service name
`proxy` and the health check of any orchestrator keep working."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time

import pytest

from tests.stack.integration.compose import SERVER_NAME
from tests.stack.integration.metrics_queries import DURATION_COUNT, nginx_value
from tests.support import wait_until
from tests.support.rawhttp import exchange, first_response, request

pytestmark = pytest.mark.integration

UNKNOWN = "unknown.example"
REJECTED = "nginx_ssl_handshakes_rejected_total"


def _http(stack, payload: bytes) -> tuple[bytes, bool]:
    port = int(stack.http.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return exchange(sock, payload)


def _https(context: ssl.SSLContext, port: int, server_name: str, payload: bytes):
    """``payload`` over TLS to 127.0.0.1:``port``, the handshake naming
    ``server_name`` (an IP address: no server name sent, as any client does)."""
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return exchange(tls, payload)


def test_an_unknown_host_over_http_gets_the_connection_closed(stack):
    assert _http(stack, request("GET", "/", host=UNKNOWN)) == (b"", True)


def test_an_unknown_host_over_https_gets_the_connection_closed_and_is_counted(stack):
    before = nginx_value(stack, DURATION_COUNT, http_response_status_code="444")
    sent = request("GET", "/api/echo", host=UNKNOWN)
    assert _https(stack.ssl_context(), stack.https_port, "localhost", sent) == (b"", True)
    # At least: mtail may still be reading an earlier test's 444.
    assert wait_until(
        lambda: nginx_value(stack, DURATION_COUNT, http_response_status_code="444") > before,
        10,
        interval=0.2,
    )


def _refused_handshake(stack) -> None:
    """A handshake naming UNKNOWN, which nginx must refuse with unrecognized_name."""
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        _https(stack.ssl_context(), stack.https_port, UNKNOWN, request("GET", "/", host=UNKNOWN))


def test_a_handshake_naming_an_unknown_host_is_refused_and_counted(stack):
    before = nginx_value(stack, REJECTED)
    for _ in range(3):
        _refused_handshake(stack)
    assert wait_until(lambda: nginx_value(stack, REJECTED) >= before + 3, 10, interval=0.2)
    assert b"handshake rejected" in stack.container("proxy").logs(tail=50)
    # Only the refused ones: a handshake for a known name is not counted.
    time.sleep(1)  # mtail has read every earlier line (it polls its files)
    counted = nginx_value(stack, REJECTED)
    sent = request("GET", "/", host="localhost")
    assert first_response(*_https(stack.ssl_context(), stack.https_port, "localhost", sent))
    time.sleep(1)
    assert nginx_value(stack, REJECTED) == counted


def test_the_refused_handshakes_log_is_emptied_past_16_mib_and_still_counted(stack):
    """mtail's entrypoint empties the error log nginx keeps open (it polls every
    10 s); mtail then reads the shrunk file from its start."""
    proxy = stack.container("proxy")
    log = "/run/nginx-log/tls.log"
    filler = f"yes 'a line that counts nothing' | head -c 17000000 >>{log}"
    assert proxy.exec_run(["sh", "-c", filler]).exit_code == 0

    def size() -> int:
        return int(proxy.exec_run(["stat", "-c", "%s", log]).output)

    assert wait_until(lambda: size() < 1_000_000, 30, interval=0.5), size()
    before = nginx_value(stack, REJECTED)
    _refused_handshake(stack)
    assert wait_until(lambda: nginx_value(stack, REJECTED) == before + 1, 10, interval=0.2)


@pytest.mark.parametrize("name", SERVER_NAME.split())
def test_every_server_name_is_answered_with_a_certificate_for_it(stack, name):
    sent = request("GET", "/", host=name)
    assert first_response(*_https(stack.ssl_context(), stack.https_port, name, sent)).status == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_a_client_given_a_loopback_address_sends_no_server_name_and_is_answered(stack, address):
    """Python sends no SNI for an IP address (as curl and browsers); the
    certificate nginx shows then covers the address."""
    sent = request("GET", "/", host=f"[{address}]" if ":" in address else address)
    response = first_response(*_https(stack.ssl_context(), stack.https_port, address, sent))
    assert response.status == 200


def test_the_service_name_proxy_is_answered(stack):
    """The load generator's name for nginx on the stack's network (its host,
    and its TLS server name); it verifies no certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sent = request("GET", "/", host="proxy:8443")
    assert first_response(*_https(context, stack.https_port, "proxy", sent)).status == 200


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "10.0.0.7:8080", UNKNOWN])
def test_the_health_path_answers_whatever_the_host(stack, host):
    """Docker's healthcheck asks 127.0.0.1, Kubernetes' probes the pod's address."""
    response = first_response(*_http(stack, request("GET", "/nginx-health", host=host)))
    assert (response.status, response.body) == (200, b"ok\n")


def test_a_known_host_over_http_is_redirected_to_https(stack):
    response = first_response(*_http(stack, request("GET", "/a?b", host="localhost")))
    assert response.status == 308
    assert response.header("Location") == f"https://localhost:{stack.https_port}/a?b"


def test_a_bad_server_name_stops_nginx_with_one_line_naming_it(stack):
    image = stack.container("proxy").image.id
    result = subprocess.run(
        ["docker", "run", "--rm", "-e", "SERVER_NAME=example.org www_example.org", image],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (
        2,
        "entrypoint: SERVER_NAME must be host names separated by spaces, got 'www_example.org'\n",
    )

"""loadtest.target: TARGET= URLs, the rate ceiling for other machines, the TLS preflight,
and the generator commands aimed at a target outside the stack. Nothing here runs Docker;
the preflight talks to a throwaway HTTP server on loopback."""

from __future__ import annotations

import http.server
import threading

import pytest

from loadtest import generators, scenario, target
from loadtest.__main__ import main

HELLO = scenario.load("hello")


@pytest.mark.parametrize(
    ("text", "base", "loopback"),
    [
        ("https://staging.example.org", "https://staging.example.org", False),
        ("https://staging.example.org/", "https://staging.example.org", False),
        ("http://127.0.0.1:28080/app/", "http://127.0.0.1:28080/app", True),
        ("https://localhost:18443", "https://localhost:18443", True),
        ("https://[::1]:8443", "https://[::1]:8443", True),
    ],
)
def test_a_target_is_a_base_url(text, base, loopback):
    parsed = target.parse(text)
    assert (parsed.base, parsed.external, parsed.loopback, parsed.verify) == (
        base,
        True,
        loopback,
        True,
    )
    assert parsed.url("/api/echo?x=1") == base + "/api/echo?x=1"
    assert target.parse(text, insecure=True).verify is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://example.org", "scheme ftp: not HTTP"),
        ("ws://example.org", "scheme ws: not HTTP"),
        ("example.org", "must be an http:// or https:// URL"),
        ("https://", "has no host"),
        ("https://example.org/?q=1", "no query"),
        ("https://user:pw@example.org", "credentials"),
        ("https://example.org:99999", "not a URL"),
    ],
)
def test_what_is_not_an_http_base_url_is_refused(text, message):
    with pytest.raises(target.TargetError, match=message):
        target.parse(text)


def test_the_rate_ceiling_guards_other_machines_only():
    remote, local = target.parse("https://203.0.113.7"), target.parse("https://127.0.0.1:8443")
    target.check_rate(remote, 100, ceiling=100, confirmed=False)  # at the ceiling: fine
    target.check_rate(remote, 5000, ceiling=100, confirmed=True)
    target.check_rate(local, 5000, ceiling=100, confirmed=False)
    target.check_rate(local, None, ceiling=100, confirmed=False)
    target.check_rate(target.STACK, None, ceiling=100, confirmed=False)
    with pytest.raises(target.TargetError, match="101 requests/s, above the ceiling of 100"):
        target.check_rate(remote, 101, ceiling=100, confirmed=False)
    with pytest.raises(target.TargetError, match=r"closed loop \(RATE=max"):
        target.check_rate(remote, None, ceiling=100, confirmed=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hello", "--target", "gopher://x"], "not HTTP"),
        (["hello", "--target", "https://203.0.113.7", "--rate", "500"], "--confirm-rate"),
        (["hello", "--target", "https://203.0.113.7", "--rate", "max"], "--confirm-rate"),
        (
            ["hello", "--target", "https://203.0.113.7", "--rate-ceiling", "10"],
            "200 requests/s, above the ceiling of 10",
        ),
        (["hello", "--target", "https://127.0.0.1", "--engine", "both"], "a TARGET's is its own"),
    ],
)
def test_python_m_loadtest_refuses_a_bad_target_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loopback_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_preflight_takes_any_http_answer(loopback_server):
    assert target.preflight(target.parse(loopback_server)) == 404


def test_preflight_names_a_target_that_does_not_answer(loopback_server):
    with pytest.raises(target.TargetError, match="does not answer"):
        target.preflight(target.parse(loopback_server.replace("http:", "https:")), timeout=5)


def test_preflight_refuses_an_unverifiable_certificate(monkeypatch):
    import httpx

    def refuse(self, url):
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")

    monkeypatch.setattr(httpx.Client, "get", refuse)
    with pytest.raises(target.TargetError, match="verification failed.*--insecure"):
        target.preflight(target.parse("https://staging.example.org"))


def test_generators_aim_at_the_target_from_the_host_network():
    staging = target.parse("https://staging.example.org/v2")
    run = generators.open_loop(HELLO, 2, staging).files["run.sh"].decode()
    assert " https://staging.example.org/v2/ >/out/hello.out" in run
    assert "getent hosts proxy" not in run  # no stack network to wait for
    stack_run = generators.open_loop(HELLO, 2).files["run.sh"].decode()
    assert "getent hosts proxy" in stack_run and target.LOCAL_STACK + "/" in stack_run


def test_an_http_target_is_loaded_over_http1():
    plain = target.parse("http://127.0.0.1:8080")
    assert generators.protocol(HELLO, plain) == "http/1.1"
    assert "--h1" in generators.open_loop(HELLO, 2, plain).files["run.sh"].decode()
    assert generators.protocol(HELLO, target.parse("https://127.0.0.1")) == "h2"


def test_the_closed_loop_puts_the_target_s_path_prefix_before_each_path():
    plan = generators.closed_loop(HELLO, 2, target.parse("https://staging.example.org/v2"))
    assert 'path = "/v2/"' in plan.files["wrk.lua"].decode()
    assert "https://staging.example.org/v2" in plan.files["run.sh"].decode()

"""ACME certificates (DOMAIN set), for real and offline, against pebble, Let's
Encrypt's ACME test server (Debian's package), on the test stack's network
(tests/stack/integration/acme/compose.yaml over docker-compose.yml): certbot
gets the certificate for DOMAIN by HTTP-01 through nginx's port 80, nginx's
watcher (nginx/certs.sh) installs it with a graceful reload, a forced renewal
under load replaces it without a failed request, and a failure (no ACME
server, a failed challenge) keeps the certificate served and logs one line.

The module recreates the proxy with DOMAIN and starts certbot and pebble
(images built once, cached after); the proxy is put back as it was after."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack.integration.compose import PROJECT, write_test_certificate
from tests.stack.integration.load import run_load
from tests.stack.integration.test_preflight import preflight
from tests.support import wait_until
from tests.support.rawhttp import exchange, first_response, request

pytestmark = pytest.mark.integration

DOMAIN = "acme.wsgistack.test"
STRAY = "stray.wsgistack.test"  # resolves to nginx, which does not answer it
DIRECTORY = "https://pebble:14000/dir"
FILES = ["-f", "docker-compose.yml", "-f", "tests/stack/integration/acme/compose.yaml"]
ISSUED = 120  # seconds: the stack's services are up; certbot's first try is one


@dataclass
class Acme:
    stack: object
    env: dict[str, str]
    root: str  # pebble's root CA (PEM), from its management API

    def compose(self, *args: str, timeout: float = 300):
        return self.stack.compose(*FILES, *args, timeout=timeout, **self.env)

    def context(self, check_hostname: bool = True) -> ssl.SSLContext:
        """Trusting pebble's root only."""
        context = ssl.create_default_context(cadata=self.root)
        context.check_hostname = check_hostname
        return context

    def served_serial(self) -> str | None:
        """The serial of the certificate nginx serves for DOMAIN (SNI), if it
        chains to pebble's root; else None."""
        try:
            with socket.create_connection(("127.0.0.1", self.stack.https_port), timeout=5) as raw:
                with self.context().wrap_socket(raw, server_hostname=DOMAIN) as tls:
                    return tls.getpeercert()["serialNumber"]
        except ssl.SSLCertVerificationError:
            return None

    def certbot(self, *command: str, **env: str) -> subprocess.CompletedProcess:
        """``command`` in the certbot container (``docker exec``, env overrides)."""
        options = [f"--env={name}={value}" for name, value in env.items()]
        return subprocess.run(
            ["docker", "exec", *options, self.stack.container("certbot").id, *command],
            capture_output=True,
            text=True,
            timeout=120,
        )


def _pebble_root(stack) -> str:
    result = stack.container("pebble").exec_run(
        ["curl", "-fsS", "--cacert", "/certs/ca.pem", "https://pebble:15000/roots/0"]
    )
    assert result.exit_code == 0, result.output
    return result.output.decode()


@pytest.fixture(scope="module")
def acme(stack):
    tls_dir = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-pebble-"))
    write_test_certificate(tls_dir, "pebble")  # pebble's listeners, for certbot
    env = {
        "DOMAIN": DOMAIN,
        "ACME_DIRECTORY": DIRECTORY,
        "COMPOSE_PROFILES": "acme",
        "PEBBLE_TLS_DIR": str(tls_dir),
    }
    acme = Acme(stack, env, "")
    try:
        built = acme.compose("build", "certbot", "pebble", timeout=600)
        assert built.returncode == 0, built.stderr
        up = acme.compose("up", "-d", "--no-build", "--wait", "proxy", "pebble", "certbot")
        assert up.returncode == 0, up.stderr + acme.compose("logs", "--tail", "30").stdout
        acme.root = _pebble_root(stack)
        yield acme
    finally:
        acme.compose("rm", "--stop", "--force", "certbot", "pebble")
        # The proxy as the other tests know it: no DOMAIN, no alias.
        restored = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120)
        shutil.rmtree(tls_dir, ignore_errors=True)
        assert restored.returncode == 0, restored.stderr


def test_the_certificate_for_the_domain_comes_from_the_acme_server(acme):
    """certbot's first run (its container's start) got it by HTTP-01 through
    nginx, and nginx serves it for DOMAIN: it chains to pebble's root."""
    assert wait_until(acme.served_serial, ISSUED, interval=1), acme.compose(
        "logs", "--tail", "20", "certbot", "proxy"
    ).stdout
    logs = acme.stack.container("proxy").logs().decode()
    assert "certs: serving the certificate in /srv/acme/current (nginx reloaded)" in logs


def test_the_challenge_path_answers_over_plain_http_while_the_rest_redirects(acme):
    """What certbot writes to the webroot, nginx serves on port 80 for DOMAIN."""
    token = "test-token-0123456789"
    folder = "/srv/acme/webroot/.well-known/acme-challenge"
    made = acme.certbot("sh", "-c", f"mkdir -p {folder} && echo {token}.key > {folder}/{token}")
    assert made.returncode == 0, made.stderr
    port = int(acme.stack.http.rsplit(":", 1)[1])
    try:
        for path, status in [(f"/.well-known/acme-challenge/{token}", 200), ("/other", 308)]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                response = first_response(*exchange(sock, request("GET", path, host=DOMAIN)))
            assert response.status == status, path
        assert response.header("Location") == f"https://{DOMAIN}:{acme.stack.https_port}/other"
    finally:
        acme.certbot("rm", "-f", f"{folder}/{token}")


def test_a_forced_renewal_under_load_replaces_it_and_fails_no_request(acme, report):
    assert wait_until(acme.served_serial, ISSUED, interval=1)
    before = acme.served_serial()
    renewed = {}

    def renew(result):
        renewed["run"] = acme.certbot("acme.sh", "once", "--force-renewal")
        renewed["serial"] = wait_until(
            lambda: (serial := acme.served_serial()) != before and serial, 30, interval=0.2
        )

    # No server name: nginx's default server, with the same certificate.
    result = run_load(
        f"https://127.0.0.1:{acme.stack.https_port}",
        acme.context(check_hostname=False),
        rate=100,
        duration=6,
        fault_at=2,
        during=renew,
    )
    report(result.report("certbot renewal, nginx reloaded by its watcher"))
    assert renewed["run"].returncode == 0, renewed["run"].stderr
    assert renewed["run"].stderr == f"acme: installed a new certificate for {DOMAIN}\n"
    assert renewed["serial"] and renewed["serial"] != before
    assert len(result.outcomes) >= 600
    assert result.failures() == []


def assert_refused_in_one_line(run, name: str, reason: str) -> None:
    """``acme.sh once`` for ``name`` failed (status 1) and said why in one line,
    starting with ``reason``, keeping the current certificate."""
    assert run.returncode == 1
    assert run.stderr.startswith(f"acme: no certificate for {name} from {DIRECTORY}: {reason}"), (
        run.stderr
    )
    assert run.stderr.endswith("; the current one stays\n") and run.stderr.count("\n") == 1


def test_a_failed_challenge_keeps_the_certificate_and_says_why_in_one_line(acme):
    """A name that resolves to nginx but that nginx does not answer (444):
    pebble's validation fails; nothing is installed."""
    assert wait_until(acme.served_serial, ISSUED, interval=1)
    before = acme.served_serial()
    run = acme.certbot("acme.sh", "once", DOMAIN=STRAY)
    assert_refused_in_one_line(run, STRAY, "the HTTP-01 challenge failed: ")
    assert acme.served_serial() == before


def test_an_unreachable_acme_server_keeps_the_certificate_and_says_why_in_one_line(acme):
    assert wait_until(acme.served_serial, ISSUED, interval=1)
    before = acme.served_serial()
    pebble = acme.stack.container("pebble")
    pebble.stop(timeout=5)
    try:
        run = acme.certbot("acme.sh", "once", "--force-renewal")
    finally:
        pebble.start()
    assert_refused_in_one_line(run, DOMAIN, "cannot reach the ACME server (")
    assert acme.served_serial() == before


def test_certbot_runs_unprivileged_on_a_read_only_root(acme):
    attrs = acme.stack.container("certbot").attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "10005:33"
    assert (host["ReadonlyRootfs"], host["CapDrop"]) == (True, ["ALL"])
    assert "no-new-privileges:true" in host["SecurityOpt"]
    # Its state (the account key) is its own: not mounted into nginx.
    proxy = {m["Name"] for m in acme.stack.container("proxy").attrs["Mounts"] if "Name" in m}
    assert f"{PROJECT}_acme" in proxy and f"{PROJECT}_acme-state" not in proxy


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DOMAIN", "203.0.113.7", "proxy: DOMAIN must be one host name like example.org"),
        ("ACME_EMAIL", "ops", "certbot: ACME_EMAIL must be an e-mail address (or empty)"),
        ("ACME_DIRECTORY", "http://pebble/dir", "certbot: ACME_DIRECTORY must be an https:// URL"),
    ],
)
def test_a_bad_acme_setting_is_one_line_naming_it_before_anything_starts(
    acme, tmp_path, name, value, says
):
    """`make up`'s preflight, with the `acme` profile on (DOMAIN set), runs
    certbot's own check (acme.sh check) besides nginx's."""
    settings = {"DOMAIN": DOMAIN, "COMPOSE_PROFILES": "acme", name: value}
    result = preflight(acme.stack, tmp_path, **settings)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{tmp_path / '.env'}: {name}: {says}"), line


def test_good_acme_settings_pass_the_preflight(acme, tmp_path):
    settings = {"DOMAIN": DOMAIN, "COMPOSE_PROFILES": "acme", "ACME_EMAIL": "ops@example.org"}
    result = preflight(acme.stack, tmp_path, **settings)
    assert (result.returncode, result.stderr) == (0, "")

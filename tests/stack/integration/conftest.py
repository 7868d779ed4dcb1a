"""The compose stack, brought up once per test session and torn down after.

It runs under its own compose project (`wsgistack-test`, or IT_PROJECT) and
ports (18080/18443/19090, or IT_HTTP_PORT / IT_HTTPS_PORT / IT_PROMETHEUS_PORT)
so it never touches a stack started with `make up`; images are tagged with the
project name, so two checkouts can test side by side. nginx's certificate comes
from a test CA made with trustme (an ECDSA P-256 leaf for localhost, valid 90
days), written to a temporary folder passed as TLS_CERT_DIR. Tests reach it only through
nginx's published ports and Prometheus' API; what they need from inside (the
app exporter's /metrics, container state) they read with the docker SDK.

Without Docker these tests skip, except with CI=true, where they fail.
KEEP_STACK=1 leaves the stack running after the session.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("IT_PROJECT", "wsgistack-test")  # compose project (and image prefix)
COMPOSE = ["docker", "compose", "--env-file", ".env.example", "-p", PROJECT]
UP_TIMEOUT = 900  # seconds: a cold build of every image on a 2-core machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop or break containers (marker `disruptive`) run last."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _docker_works() -> str | None:
    """None if the engine and compose v2 answer, else what is missing."""
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            result = subprocess.run(command, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(command)}` failed: {exc}"
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {result.stderr.decode().strip()[:200]}"
    return None


def read_env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    """What the tests need to reach the running stack."""

    https: str
    http: str
    prometheus: str
    ca_file: Path
    env: dict[str, str]
    compose_env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300, **overrides: str):
        """Run `docker compose` on the test project, with env overrides."""
        return _compose({**self.compose_env, **overrides}, *args, timeout=timeout)

    @property
    def https_port(self) -> int:
        return int(self.https.rsplit(":", 1)[1])

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, **kwargs) -> httpx.Client:
        """An HTTPS client that verifies nginx's certificate against our CA."""
        return httpx.Client(base_url=self.https, verify=self.ssl_context(), timeout=30, **kwargs)

    def container(self, service: str):
        found = self.containers(service, all=True)
        assert found, f"no container for service {service}"
        return found[0]

    def containers(self, service: str | None = None, all: bool = False) -> list:
        """The project's containers (of one service), oldest first; running ones
        unless ``all``."""
        labels = [f"com.docker.compose.project={PROJECT}"]
        if service is not None:
            labels.append(f"com.docker.compose.service={service}")
        found = docker.from_env().containers.list(all=all, filters={"label": labels})
        return sorted(found, key=lambda c: c.attrs["Created"])

    def app_exec(self, *command: str) -> str:
        """Run a command in the app container; returns its stdout (fails on non-zero)."""
        result = self.container("app").exec_run(list(command), demux=True)
        stdout, stderr = result.output
        assert result.exit_code == 0, (stderr or b"").decode()
        return (stdout or b"").decode()

    def exporter_samples(self) -> list:
        """Every sample the app's exporter serves now (read inside the app network)."""
        text = self.app_exec(
            "python",
            "-c",
            "import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())",
        )
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def request_count(self, method: str, status: int) -> float:
        """http_server_request_duration_seconds_count for one method and status."""
        return sum(
            s.value
            for s in self.exporter_samples()
            if s.name == "http_server_request_duration_seconds_count"
            and s.labels.get("http_request_method") == method
            and s.labels.get("http_response_status_code") == str(status)
        )


def write_test_certificate(folder: Path) -> Path:
    """Write nginx's fullchain.pem and privkey.pem to ``folder`` and return the
    path of the CA certificate that issued them.

    The CA is a fresh trustme CA (ECDSA P-256). The leaf (ECDSA P-256, SHA-256,
    for localhost, 127.0.0.1 and ::1, valid 90 days: Mozilla's recommended
    lifespan) is issued here with its key through `cryptography`, because
    trustme marks a leaf's subjectAltName critical next to a non-empty subject,
    which the CA/Browser Forum rules that sslyze's path validation applies
    reject (RFC 5280 §4.2.1.6 wants it non-critical then). Everything is
    readable by the proxy's unprivileged user: a throwaway key.
    """
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.chmod(0o755)
    (folder / "fullchain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    for name in ("fullchain.pem", "privkey.pem", "ca.pem"):
        (folder / name).chmod(0o644)
    return folder / "ca.pem"


def _compose(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMPOSE, *args], cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True
    )


@pytest.fixture(scope="session")
def stack() -> Stack:
    problem = _docker_works()
    if problem:
        message = f"Docker is not usable ({problem}); run `make bootstrap`"
        if _in_ci():
            pytest.fail(f"CI=true: integration tests must run, but {message}")
        pytest.skip(message)

    ports = {
        "HTTP_PORT": os.environ.get("IT_HTTP_PORT", "18080"),
        "HTTPS_PORT": os.environ.get("IT_HTTPS_PORT", "18443"),
        "PROMETHEUS_PORT": os.environ.get("IT_PROMETHEUS_PORT", "19090"),
    }
    # Our own folder, not pytest's tmp_path (other pytest runs on this machine
    # prune old ones): nginx reads it for the whole session.
    tls_dir = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-tls-"))
    ca_file = write_test_certificate(tls_dir)
    env = {
        **os.environ,
        **ports,
        "BIND_ADDRESS": "127.0.0.1",
        "COMPOSE_PROJECT_NAME": PROJECT,
        "TLS_CERT_DIR": str(tls_dir),
    }
    subprocess.run(["bash", "scripts/wheels.sh"], cwd=ROOT, check=True, timeout=600)
    started = time.monotonic()
    # A stack left by an earlier session (KEEP_STACK=1, a crash) is removed
    # first: the tests count from a fresh one.
    _compose(env, "down", "-v", "--remove-orphans")
    up = _compose(env, "up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=UP_TIMEOUT)
    if up.returncode != 0:
        logs = _compose(env, "logs", "--no-color", "--tail", "100").stdout
        status = _compose(env, "ps", "-a").stdout
        _compose(env, "down", "-v", "--remove-orphans")
        shutil.rmtree(tls_dir, ignore_errors=True)
        pytest.fail(f"`docker compose up` failed:\n{up.stderr[-4000:]}\n{status}\n{logs[-8000:]}")
    print(f"\nstack up in {time.monotonic() - started:.0f} s")
    yield Stack(
        https=f"https://localhost:{ports['HTTPS_PORT']}",
        http=f"http://localhost:{ports['HTTP_PORT']}",
        prometheus=f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
        ca_file=ca_file,
        env=read_env_example(),
        compose_env=env,
    )
    if os.environ.get("KEEP_STACK") != "1":
        _compose(env, "down", "-v", "--remove-orphans")
        shutil.rmtree(tls_dir, ignore_errors=True)


@pytest.fixture
def report(capsys):
    """Print a line to the terminal even when pytest captures output (the
    measured counts the README quotes)."""

    def emit(line: str) -> None:
        with capsys.disabled():
            print(f"\n  {line}", flush=True)

    return emit

"""The compose stack the integration tests run against: its project and
``docker compose`` command line, ``Stack`` (what the tests need to reach it),
and nginx's test certificate. The conftest's ``stack`` fixture brings it up.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT
from tests.support.rawhttp import IDLE_TIMEOUT, exchange_tls

PROJECT = os.environ.get("IT_PROJECT", "wsgistack-test")  # compose project (and image prefix)
COMPOSE = ["docker", "compose", "--env-file", ".env.example", "-p", PROJECT]


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
        return run_compose({**self.compose_env, **overrides}, *args, timeout=timeout)

    @property
    def https_port(self) -> int:
        return int(self.https.rsplit(":", 1)[1])

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def exchange(self, payload: bytes, idle_timeout: float = IDLE_TIMEOUT) -> tuple[bytes, bool]:
        """``payload`` byte for byte to nginx on a new TLS connection: (what came
        back, whether nginx closed it) (tests.support.rawhttp.exchange)."""
        return exchange_tls(self.https_port, self.ssl_context(), payload, idle_timeout)

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


def run_compose(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMPOSE, *args], cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True
    )

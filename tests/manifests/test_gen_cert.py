"""scripts/gen-cert.sh, the development certificate `make up` keeps: a local CA
and a leaf it signs that a verifier accepts as it would a public CA's (checked
with `cryptography`'s path validation), kept while it is good, issued again
when it is nearly expired or SERVER_NAME changed."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from tests.support import ROOT

NAMES = "example.org www.example.org 192.0.2.7"


def gen_cert(folder: Path, server_name: str = NAMES) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/gen-cert.sh"), str(folder)],
        env={**os.environ, "SERVER_NAME": server_name},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def verify(folder: Path, subject: x509.DNSName | x509.IPAddress) -> None:
    """Path validation from the leaf to ca.pem for ``subject``, as a TLS client
    does it (raises if the chain, the names or an extension is wrong)."""
    store = Store([load(folder / "ca.pem")])
    PolicyBuilder().store(store).build_server_verifier(subject).verify(
        load(folder / "fullchain.pem"), []
    )


def test_the_leaf_passes_a_clients_checks_for_every_name(tmp_path):
    gen_cert(tmp_path)
    leaf = load(tmp_path / "fullchain.pem")
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert sans(leaf) == {"localhost", "127.0.0.1", "::1", *NAMES.split()}
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert datetime.timedelta(days=364) < lifetime <= datetime.timedelta(days=365)
    for name in ("localhost", "example.org", "www.example.org"):
        verify(tmp_path, x509.DNSName(name))
    for address in ("127.0.0.1", "::1", "192.0.2.7"):
        verify(tmp_path, x509.IPAddress(ipaddress.ip_address(address)))
    # nginx (uid 33) reads the leaf's key through a bind mount; the CA key is the owner's.
    assert (tmp_path / "privkey.pem").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600


def test_a_second_run_keeps_the_ca_and_the_leaf(tmp_path):
    gen_cert(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.pem")}
    result = gen_cert(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.pem")} == before
    assert result.stderr == ""


def _sign_leaf(folder: Path, days_left: int) -> None:
    """Replace the leaf with one the local CA signed for the same names that
    expires in ``days_left`` days."""
    ca = load(folder / "ca.pem")
    ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
    old = load(folder / "fullchain.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=365 - days_left))
        .not_valid_after(now + datetime.timedelta(days=days_left))
    )
    for extension in old.extensions:
        if not isinstance(extension.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    leaf = builder.sign(ca_key, hashes.SHA256())
    (folder / "fullchain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.parametrize(("days_left", "reissued"), [(45, False), (20, True)])
def test_a_leaf_is_issued_again_when_fewer_than_30_days_remain(tmp_path, days_left, reissued):
    gen_cert(tmp_path)
    ca = (tmp_path / "ca.pem").read_bytes()
    _sign_leaf(tmp_path, days_left)
    serial = load(tmp_path / "fullchain.pem").serial_number
    result = gen_cert(tmp_path)
    assert (load(tmp_path / "fullchain.pem").serial_number != serial) is reissued
    assert (tmp_path / "ca.pem").read_bytes() == ca
    if reissued:
        assert "fewer than 30 days left" in result.stderr
        leaf = load(tmp_path / "fullchain.pem")
        assert leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(
            days=364
        )
        verify(tmp_path, x509.DNSName("example.org"))


@pytest.mark.parametrize("server_name", ["example.org", f"{NAMES} api.example.org"])
def test_a_leaf_is_issued_again_when_server_name_changes(tmp_path, server_name):
    gen_cert(tmp_path)
    ca = (tmp_path / "ca.pem").read_bytes()
    result = gen_cert(tmp_path, server_name)
    assert "SERVER_NAME changed" in result.stderr
    assert sans(load(tmp_path / "fullchain.pem")) == {"localhost", "127.0.0.1", "::1"} | set(
        server_name.split()
    )
    assert (tmp_path / "ca.pem").read_bytes() == ca


def _self_signed(folder: Path, name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=825))
        .sign(key, hashes.SHA256())
    ).public_bytes(serialization.Encoding.PEM)
    (folder / "fullchain.pem").write_bytes(cert)
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert


def test_a_certificate_of_your_own_is_left_as_it_is(tmp_path):
    cert = _self_signed(tmp_path, "example.org")
    result = gen_cert(tmp_path)
    assert (tmp_path / "fullchain.pem").read_bytes() == cert
    assert not (tmp_path / "ca.pem").exists()
    assert "left as it is" in result.stderr


def test_the_self_signed_localhost_certificate_of_earlier_versions_is_replaced(tmp_path):
    _self_signed(tmp_path, "localhost")
    gen_cert(tmp_path)
    verify(tmp_path, x509.DNSName("localhost"))

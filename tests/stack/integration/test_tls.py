"""nginx's TLS checked by real scanners: sslyze against Mozilla's "intermediate"
profile and Debian's testssl.sh. (TLS 1.1 refused: test_request_path.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # each scan takes many seconds

BIN = Path(sys.executable).parent


def test_sslyze_finds_the_mozilla_intermediate_profile(stack):
    result = subprocess.run(
        [
            BIN / "python",
            "-m",
            "sslyze",
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={stack.ca_file}",
            f"localhost:{stack.https_port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"localhost:{stack.https_port}: OK - Compliant." in result.stdout


# A property of the development certificate, not of nginx: a local CA
# (scripts/gen-cert.sh's) runs no revocation service, so its certificates name
# no CRL or OCSP URI.
# A public CA's certificate names one.
TEST_CA_FINDINGS = {("cert_revocation", "Neither CRL nor OCSP URI provided")}


def test_testssl_reports_no_high_or_critical_finding(stack, tmp_path, report):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    assert testssl, "testssl.sh is missing: run `make bootstrap` (requirements/host-packages.txt)"
    out = tmp_path / "testssl.json"
    # Protocols, forward secrecy, server defaults with the certificate (verified
    # against our CA), and the vulnerability checks; headers are
    # test_security_headers.py's, cipher categories are within -f and sslyze's.
    result = subprocess.run(
        [
            testssl,
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "--ip",
            "one",
            "--nodns",  # no CAA or rDNS lookups: this machine has no DNS beyond localhost
            "min",
            "--add-ca",
            str(stack.ca_file),
            "--jsonfile",
            str(out),
            "-p",
            "-f",
            "-S",
            "-U",
            f"localhost:{stack.https_port}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    findings = json.loads(out.read_text())
    assert len(findings) > 30, result.stdout[-3000:]
    severe = [
        (f["id"], f["severity"], f["finding"])
        for f in findings
        if f["severity"] in ("HIGH", "CRITICAL") and (f["id"], f["finding"]) not in TEST_CA_FINDINGS
    ]
    assert severe == [], result.stdout[-3000:]
    by_severity: dict[str, int] = {}
    for finding in findings:
        by_severity[finding["severity"]] = by_severity.get(finding["severity"], 0) + 1
    report(f"testssl.sh: {len(findings)} findings by severity {by_severity}")
    # The ones that matter most, stated outright.
    by_id = {f["id"]: f for f in findings}
    for protocol in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert "not offered" in by_id[protocol]["finding"], by_id[protocol]
    for protocol in ("TLS1_2", "TLS1_3"):
        assert by_id[protocol]["finding"].startswith("offered"), by_id[protocol]
    assert by_id["cert_chain_of_trust"]["severity"] == "OK", by_id["cert_chain_of_trust"]

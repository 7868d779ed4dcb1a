"""scripts/check-env.py: an existing clone's .env with wsgistack 0.1's names
is refused before anything starts, one line per name, naming the new one."""

from __future__ import annotations

import subprocess
import sys

from wsgistack.config import SETTINGS

from tests.support import ROOT, load_script

SCRIPT = ROOT / "scripts" / "check-env.py"
check_env = load_script("scripts/check-env.py", "check_env")


def test_every_old_name_maps_to_a_setting_of_today():
    """SERVER_SETTINGS is wsgistack 0.1's list: each renamed setting still exists."""
    today = {s.name.upper() for s in SETTINGS} | {"CONFIG"}
    assert set(check_env.SERVER_SETTINGS) <= today


def test_old_names_and_values_are_refused_one_line_each(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "# comment\nSERVER_THREADS=4\nexport SERVER_LIMIT_REQUEST_BODY=10\n"
        "APP_MODULE='app.wsgi:application'\nWEB_CONCURRENCY=3\nSERVER_NAME=example.org\n"
    )
    result = subprocess.run(
        [sys.executable, SCRIPT, env], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{env}: SERVER_THREADS is no longer read: rename it WSGISTACK_THREADS "
        "(CHANGELOG.md: Upgrading)",
        f"{env}: SERVER_LIMIT_REQUEST_BODY is no longer read: rename it "
        "WSGISTACK_LIMIT_REQUEST_BODY (CHANGELOG.md: Upgrading)",
        f"{env}: APP_MODULE=app.wsgi:application is no longer valid: use "
        "APP_MODULE=wsgistack_demo.wsgi:application (CHANGELOG.md: Upgrading)",
    ]


def test_the_example_env_passes():
    result = subprocess.run(
        [sys.executable, SCRIPT, ROOT / ".env.example"], capture_output=True, text=True
    )
    assert (result.returncode, result.stderr) == (0, "")

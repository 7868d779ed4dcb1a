"""scripts/check-env.py: an existing clone's .env with wsgistack 0.1's names
is refused before anything starts, one line per name, naming the new one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from wsgistack.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-env.py"
_spec = importlib.util.spec_from_file_location("check_env", SCRIPT)
assert _spec and _spec.loader
check_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_env)


def test_every_server_setting_had_its_old_name_listed():
    assert {s.name.upper() for s in SETTINGS if s.name != "app"} <= set(check_env.SERVER_SETTINGS)


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

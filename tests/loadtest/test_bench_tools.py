"""loadtest.bench.tools for the C servers: their pins, the build packages installed
before pip, and a server that cannot be installed left out in one line. Nothing here
runs apt-get or pip: both are replaced by recorders."""

from __future__ import annotations

import subprocess

import pytest

from loadtest.bench import tools
from loadtest.bench.engines import ENGINES


def test_the_c_servers_are_pinned_exactly():
    pins = tools.pins()
    assert set(pins) == {e.distribution for e in ENGINES.values() if e.compiled}
    assert all(version.count(".") == 2 for version in pins.values())


def test_pins_reads_name_version_lines(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("# comment\n-c constraints.txt\nBjoern==3.2.2  # C\nuwsgi==2.0.31\n")
    assert tools.pins(path) == {"bjoern": "3.2.2", "uwsgi": "2.0.31"}


@pytest.fixture
def recorded(monkeypatch):
    """apt-get and pip replaced: what they were asked, nothing installed, no build tools."""
    calls: dict[str, list] = {"apt": [], "pip": []}
    monkeypatch.setattr(tools, "_apt_install", lambda missing: calls["apt"].append(list(missing)))

    def pip(argv, **kwargs):
        calls["pip"].append(argv[-1])
        return subprocess.CompletedProcess(argv, 1, "", "error: ev.h: No such file\n")

    monkeypatch.setattr(tools.subprocess, "run", pip)
    monkeypatch.setattr(tools, "installed", lambda distribution: None)
    monkeypatch.setattr(tools, "find_tool", lambda name: f"/usr/bin/{name}")
    monkeypatch.setitem(tools.BUILD_PACKAGES, "python3-dev", lambda: True)
    monkeypatch.setitem(tools.BUILD_PACKAGES, "libev-dev", lambda: False)
    return calls


def test_install_missing_installs_headers_before_pip_and_goes_on(recorded):
    chosen = [ENGINES["wsgistack"], ENGINES["bjoern"], ENGINES["uwsgi"]]
    failed = tools.install_missing(chosen)
    assert recorded["apt"] == [["libev-dev"]]  # compiler and Python's headers are there
    assert recorded["pip"] == ["bjoern==3.2.2", "uwsgi==2.0.31"]  # each on its own
    assert failed == {"bjoern": "error: ev.h: No such file", "uwsgi": "error: ev.h: No such file"}
    assert tools.left_out(chosen, failed)["bjoern"] == (
        "bjoern left out: pip install bjoern==3.2.2 failed: error: ev.h: No such file"
    )


def test_install_missing_builds_nothing_for_the_python_engines(recorded):
    assert tools.install_missing([ENGINES["wsgistack"], ENGINES["granian"]]) == {}
    assert recorded == {"apt": [[]], "pip": []}


def test_a_c_server_not_installed_is_left_out_in_one_line(monkeypatch):
    monkeypatch.setattr(tools, "installed", lambda d: "2.0.31" if d == "uwsgi" else None)
    chosen = [ENGINES["wsgistack"], ENGINES["bjoern"], ENGINES["uwsgi"]]
    skipped = tools.left_out(chosen, {})
    assert list(skipped) == ["bjoern"]
    assert skipped["bjoern"] == (
        "bjoern left out: bjoern==3.2.2 not installed (it needs build-essential python3-dev "
        "libev-dev; `make bench` as root installs them)"
    )

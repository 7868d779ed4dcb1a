"""What `make up` needs of the host, and what it does there: scripts/bootstrap.sh
installs nothing and asks for no root when Docker, compose and the base image
are there; the wheels' platform comes from the Docker server
(scripts/docker-arch.sh); `make rebuild` refreshes the base image, then
rebuilds every image without cache. Docker is a stub here: it answers what
the test gives it."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from tests.support import ROOT


def stub(folder, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)


def run(command: list[str], bin_dir, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, **kwargs
    )


@pytest.fixture
def host(tmp_path):
    """A non-root user whose Docker answers, with compose v2 and the base image,
    on a host without any of the test tools; every installer records its call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    stub(bin_dir, "id", '[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n')
    stub(bin_dir, "docker", 'case "$1 $2" in "compose version") echo 2.40.3 ;; esac\n')
    stub(bin_dir, "dpkg-query", "exit 1\n")  # nothing installed
    for installer in ("apt-get", "sudo", "debootstrap", "dockerd", "pip", "python3"):
        stub(bin_dir, installer, f'echo "{installer} $*" >>{calls}; exit 1\n')
    return bin_dir, calls


def test_running_installs_nothing_and_needs_no_root(host):
    bin_dir, calls = host
    result = run(["bash", "scripts/bootstrap.sh"], bin_dir)
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), calls.read_text()
    assert "base image debian:bookworm-slim: present" in result.stderr


def test_the_test_tools_are_the_tests_step(host):
    """`make test`'s step still wants them, and says so as non-root."""
    bin_dir, calls = host
    result = run(["bash", "scripts/bootstrap.sh", "host-packages"], bin_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "bootstrap: error: need root to install openssl iproute2 testssl.sh slowhttptest"
    )
    assert not calls.exists()


# `docker info --format '{{.Architecture}}'` is the daemon host's `uname -m`
# (moby/moby#49594): x86_64 recorded on this project's CI machine (Docker
# 20.10.24), aarch64 on arm64 Linux and in Docker Desktop's VM on Apple silicon.
@pytest.mark.parametrize("recorded", ["x86_64", "aarch64"])
def test_wheels_are_for_the_docker_servers_architecture(tmp_path, recorded):
    stub(
        tmp_path, "docker", f'[ "$*" = "info --format {{{{.Architecture}}}}" ] && echo {recorded}\n'
    )
    stub(tmp_path, "uname", "echo arm64\n")  # an Apple silicon Mac's own name
    result = run(["bash", "scripts/docker-arch.sh"], tmp_path)
    assert (result.returncode, result.stdout) == (0, f"{recorded}\n"), result.stderr


def test_an_architecture_without_wheels_is_named(tmp_path):
    stub(tmp_path, "docker", "echo armv7l\n")
    result = run(["bash", "scripts/docker-arch.sh"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "docker-arch: the Docker server's architecture 'armv7l' is not x86_64 or aarch64\n"
    )


def test_wheels_sh_asks_docker_not_uname():
    script = (ROOT / "scripts/wheels.sh").read_text()
    assert "uname" not in script and "arch=$(bash scripts/docker-arch.sh)" in script


def test_rebuild_refreshes_the_base_image_then_builds_without_cache():
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "rebuild"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    builds = [line for line in lines if line.startswith("docker compose") and " build " in line]
    assert lines.index("bash scripts/bootstrap.sh refresh-base") < lines.index(builds[0])
    assert builds == [
        "docker compose --profile build build --no-cache runtime wheels",
        "docker compose build --no-cache app",
        "docker compose build --no-cache",
    ]

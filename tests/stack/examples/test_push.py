"""`make push`: the app and proxy images tagged with a version and pushed to a
registry, offline, to a local registry container (Debian's docker-registry)
on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.examples.deploy import MAKE_TIMEOUT, PORTS, PROJECT
from tests.support import ROOT, wait_until
from tests.support.dockerhost import docker
from tests.support.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGISTRY_IMAGE = f"{PROJECT}/test-registry:latest"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def registry(docker_works) -> Iterator[str]:
    """host:port of a registry container on loopback."""
    registry_dir = str(Path(__file__).parent / "registry")
    docker("build", "--quiet", "-t", REGISTRY_IMAGE, registry_dir, timeout=600)
    port = free_port()
    container = docker(
        "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:5000", REGISTRY_IMAGE, timeout=600
    )
    try:

        def answers() -> bool:
            try:
                return _get_json(f"http://127.0.0.1:{port}/v2/_catalog") is not None
            except OSError:
                return False

        assert wait_until(answers, 30, interval=0.2)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["docker", "rm", "-f", container.strip()], capture_output=True, timeout=60)


def test_make_push_tags_the_app_and_proxy_with_a_version(registry):
    environ = {**os.environ, **PORTS, "COMPOSE_PROJECT_NAME": PROJECT}
    result = subprocess.run(
        ["make", "push", f"REGISTRY={registry}/team", "TAG=v1.0-test"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"pushed {registry}/team/app:v1.0-test" in result.stdout
    assert f"APP_IMAGE={registry}/team/app:v1.0-test" in result.stdout
    for service in ("app", "proxy"):
        tags = _get_json(f"http://{registry}/v2/team/{service}/tags/list")["tags"]
        assert tags == ["v1.0-test"], service
        docker("rmi", f"{registry}/team/{service}:v1.0-test", timeout=600)


def test_make_push_without_a_registry_says_so():
    result = subprocess.run(
        ["make", "push", "REGISTRY="], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "make push: give REGISTRY=host[:port]/path" in result.stderr

"""Deploying an example project (examples/) as a user would: copied to a
folder outside the repository, then `make up APP_DIR=...` (and `make dev`)
under its own compose project and ports, so it can run beside the
integration tests' stack. Nothing of the template may change: `git status`
is compared before and after."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

PROJECT = os.environ.get("EXAMPLES_PROJECT", "wsgistack-examples")
# Below Linux's ephemeral range (32768-60999), where an outgoing connection can
# hold a port at the moment Docker binds it, and apart from the integration
# (18xxx) and Swarm (28xxx) stacks'.
PORTS = {"HTTP_PORT": "17080", "HTTPS_PORT": "17443", "PROMETHEUS_PORT": "17090"}
MAKE_TIMEOUT = 900  # seconds: a first build of the runtime and app images


def git_status() -> str:
    """`git status --porcelain` of the repository (untracked files included)."""
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@dataclass
class Deployment:
    """An example project deployed with `make up APP_DIR=...`."""

    folder: Path  # the copy outside the repository
    settings: dict[str, str]  # APP_MODULE, STATIC_DIR, ... as make variables

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **PORTS,
            "COMPOSE_PROJECT_NAME": PROJECT,
            "BIND_ADDRESS": "127.0.0.1",
        }

    def make(self, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """Run `make TARGET APP_DIR=... SETTINGS...` in the repository; raises with
        its output when it fails."""
        variables = [f"APP_DIR={self.folder}", *(f"{k}={v}" for k, v in self.settings.items())]
        result = subprocess.run(
            ["make", target, *variables, *extra],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=MAKE_TIMEOUT,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"make {target} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}\n{self.logs()}"
            )
        return result

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60").stdout[-6000:]

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET https://localhost:<port><path> through nginx: (status, headers, body)."""
        context = ssl.create_default_context(cafile=str(ROOT / "nginx/certs/ca.pem"))
        url = f"https://localhost:{PORTS['HTTPS_PORT']}{path}"
        try:
            with urllib.request.urlopen(url, context=context, timeout=10) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def image(self, service: str) -> str:
        return f"{PROJECT}/{service}:latest"

    def files_in_image(self, service: str, folder: str) -> list[str]:
        """Every path under ``folder`` in the service's image (find, relative)."""
        result = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "find", self.image(service), folder],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [line[len(folder) :].lstrip("/") for line in result.stdout.splitlines()]


def copy_example(name: str, destination: Path) -> Path:
    """examples/<name> copied to ``destination`` (outside the repository), with
    what a real project folder holds and must never ship: a .git folder and a
    .env file with a secret, and a virtualenv."""
    folder = destination / name
    shutil.copytree(ROOT / "examples" / name, folder)
    (folder / ".env").write_text("SECRET_KEY=this-must-not-enter-the-image\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".venv" / "bin").mkdir(parents=True)
    return folder


def poll(deployment: Deployment, path: str, wanted: bytes, timeout: float) -> float | None:
    """Seconds until GET ``path`` answers a body containing ``wanted``, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            status, _, body = deployment.get(path)
        except OSError:
            status, body = 0, b""
        if status == 200 and wanted in body:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def deploy_example(
    name: str, destination: Path, settings: Callable[[Path], dict[str, str]]
) -> Iterator[Deployment]:
    """examples/<name> copied to ``destination`` and up with `make up` and the
    ``settings(folder)``; yields the Deployment, then takes it down and checks
    that no file of the template changed. For a module-scoped fixture."""
    before = git_status()
    folder = copy_example(name, destination)
    deployment = Deployment(folder, settings(folder))
    deployment.down()
    try:
        deployment.make("up")
        yield deployment
    finally:
        deployment.down()
    assert git_status() == before, "deploying an example changed the template's files"

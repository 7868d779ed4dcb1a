"""The `nginx-log` volume nginx and mtail share: writable by both whichever
container Docker creates on it first. An empty volume takes the owner and mode
of the first new container's mount point (Docker's copy-up), even while another
container has it mounted: Swarm starts the two side by side, and a proxy image
whose folder was nginx's own left mtail unable to create its files (its task
exited 2 in a loop, the deploy never converged)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from tests.stack.integration.compose import PROJECT
from tests.support.dockerhost import docker

pytestmark = pytest.mark.integration

MOUNT = "/run/nginx-log"


@pytest.fixture
def empty_volume(stack):
    """A new volume with the stack's `nginx-log` options (docker-compose.yml's)."""
    options = json.loads(docker("volume", "inspect", f"{PROJECT}_nginx-log"))[0]["Options"]
    name = f"{PROJECT}-probe-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", *(f"--opt={k}={v}" for k, v in options.items()), name)
    containers: list[str] = []
    yield name, containers
    if containers:
        docker("rm", "--force", *containers)
    docker("volume", "rm", name)


@pytest.mark.parametrize(("first", "second"), [("mtail", "proxy"), ("proxy", "mtail")])
def test_both_users_can_create_files_whichever_container_comes_first(
    stack, empty_volume, first, second
):
    volume, containers = empty_volume
    image = {service: stack.container(service).image.id for service in ("proxy", "mtail")}
    mount = f"{volume}:{MOUNT}"
    # `first` holds the volume mounted and empty while `second` is created on it.
    held = docker("run", "--detach", "--entrypoint", "sleep", "-v", mount, image[first], "120")
    containers.append(held.strip())
    containers.append(docker("create", "-v", mount, image[second]).strip())
    for service in ("proxy", "mtail"):  # each as its image's user; fails the test if refused
        docker("run", "--rm", "--entrypoint", "touch", "-v", mount, image[service],
               f"{MOUNT}/{service}.probe")  # fmt: skip


def test_mtail_refuses_a_folder_it_cannot_write_with_one_line_naming_it(stack, tmp_path):
    """A volume of the user's own making, not writable by mtail: one clear line."""
    tmp_path.chmod(0o755)  # the test's user's, not mtail's (uid 10003)
    result = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{tmp_path}:{MOUNT}", stack.container("mtail").image.id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert re.fullmatch(
        rf"mtail: {MOUNT} is not writable by uid 10003 \(\S+:\S+ 755\); the nginx-log volume"
        r" must be writable by nginx's and mtail's users \(mode 0777\)\n",
        result.stderr,
    ), result.stderr
    assert not list(tmp_path.iterdir()), "nothing created"

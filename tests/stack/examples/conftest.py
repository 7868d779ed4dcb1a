"""The example deployments need Docker; without it they skip, except in CI."""

from __future__ import annotations

import pytest

from tests.support.dockerhost import docker_problem, skip_without_docker


@pytest.fixture(scope="session")
def docker_works() -> None:
    skip_without_docker(docker_problem(), "example deployment")

"""A project whose requirements conflict with the server's own dependencies
fails its image build with pip's line naming both versions, not later at run
time."""

from __future__ import annotations

import pytest

from tests.stack.examples.deploy import Deployment, git_status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_a_requirement_older_than_the_servers_fails_the_build(docker_works, tmp_path):
    before = git_status()
    project = tmp_path / "conflicting"
    project.mkdir()
    (project / "requirements.txt").write_text("prometheus-client==0.19.0\n")
    (project / "main.py").write_text(APP)
    deployment = Deployment(project, {"APP_MODULE": "main:application"})
    with pytest.raises(AssertionError) as failure:
        deployment.make("build")
    message = str(failure.value)
    assert "the project's requirements conflict with the server's" in message
    assert (
        "has requirement prometheus-client>=0.20, but you have prometheus-client 0.19.0" in message
    )
    assert git_status() == before

"""The stack on Docker Swarm: HTTPS through the proxy from every app replica,
scaling and rolling updates under load with no failed request, and an
automatic rollback of a broken release. Each load test prints its counts."""

from __future__ import annotations

import subprocess
import time

import pytest

pytestmark = [pytest.mark.integration]

GREETING = "Hello from the WSGI stack!\n"


def _app_image(stack) -> str:
    return stack.inspect("app")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def _build(tag: str, dockerfile: str) -> None:
    """Build ``tag`` from a Dockerfile given as text (no context needed)."""
    result = subprocess.run(
        ["docker", "build", "--quiet", "--tag", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def _update_state(stack) -> str:
    return (stack.inspect("app").get("UpdateStatus") or {}).get("State", "")


def _print(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n  {line}")


def test_deploy_serves_https_from_three_replicas(swarm_stack):
    assert len(swarm_stack.running_tasks("app")) == 3
    with swarm_stack.client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == GREETING
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_tls_pair_is_a_swarm_secret(swarm_stack):
    spec = swarm_stack.inspect("proxy")["Spec"]["TaskTemplate"]["ContainerSpec"]
    targets = {secret["File"]["Name"] for secret in spec.get("Secrets", [])}
    assert targets == {"/etc/nginx/certs/fullchain.pem", "/etc/nginx/certs/privkey.pem"}
    assert not spec.get("Mounts"), "the certificate folder must not be bind-mounted"
    assert not any("PRIVATE KEY" in variable for variable in spec.get("Env", []))


def test_requests_spread_over_all_replicas(swarm_stack):
    with swarm_stack.client() as client:
        hostnames = [client.get("/api/echo").json()["hostname"] for _ in range(60)]
    assert set(hostnames) == swarm_stack.hostnames("app")
    assert len(set(hostnames)) == 3


def test_app_network_is_internal(swarm_stack):
    network = swarm_stack.docker(
        "network", "inspect", "--format", "{{.Internal}} {{.Driver}}", f"{swarm_stack.name}_backend"
    )
    assert network.split() == ["true", "overlay"]


@pytest.mark.timeout(240)
def test_scale_up_and_down_under_load_fails_no_request(swarm_stack, capsys):
    def scale(replicas: int) -> None:
        swarm_stack.docker(
            "service", "scale", "--detach", f"{swarm_stack.service('app')}={replicas}"
        )
        swarm_stack.wait(
            90,
            lambda: (
                len(swarm_stack.running_tasks("app")) == replicas
                and swarm_stack.containers("app") == replicas
            ),
            f"scaling to {replicas} replicas",
        )

    with swarm_stack.load() as load:
        time.sleep(2)
        scale(5)
        up = time.monotonic()
        five = swarm_stack.hostnames("app")
        # nginx resolves `app` again within a second: the new replicas get requests.
        swarm_stack.wait(
            20, lambda: set(load.hostnames_since(up)) == five, "requests on 5 replicas"
        )
        scale(2)
        down = time.monotonic()
        two = swarm_stack.hostnames("app")
        time.sleep(3)
        scale(3)
        time.sleep(2)
    _print(capsys, load.report("scale 3 → 5 → 2 → 3"))
    assert set(load.hostnames_since(down)) >= two
    assert load.failed == 0, load.report("scale")
    assert load.sent > 100


@pytest.mark.timeout(240)
def test_rolling_update_under_load_fails_no_request(swarm_stack, capsys):
    old_hostnames = swarm_stack.hostnames("app")
    new_image = f"{swarm_stack.name}/app:v2"
    _build(
        new_image, f"FROM {_app_image(swarm_stack)}\nLABEL org.opencontainers.image.version=v2\n"
    )
    with swarm_stack.load() as load:
        time.sleep(2)
        swarm_stack.docker(
            "service", "update", "--detach", "--image", new_image, swarm_stack.service("app")
        )
        swarm_stack.wait(180, lambda: _update_state(swarm_stack) == "completed", "rolling update")
        done = time.monotonic()
        time.sleep(3)
    _print(capsys, load.report("rolling update to a new image"))
    tasks = swarm_stack.running_tasks("app")
    assert len(tasks) == 3
    assert {task["Spec"]["ContainerSpec"]["Image"] for task in tasks} == {new_image}
    new_hostnames = swarm_stack.hostnames("app")
    assert not new_hostnames & old_hostnames
    assert set(load.hostnames_since(done)) == new_hostnames
    assert load.failed == 0, load.report("rolling update")
    assert load.sent > 100


@pytest.mark.timeout(240)
def test_broken_image_rolls_back_automatically(swarm_stack, capsys):
    good_image = _app_image(swarm_stack)
    good_hostnames = swarm_stack.hostnames("app")
    broken_image = f"{swarm_stack.name}/app:broken"
    # A release without its application: the server can't import it and exits.
    _build(broken_image, f"FROM {good_image}\nUSER root\nRUN rm -rf /srv/app\nUSER app\n")
    with swarm_stack.load() as load:
        swarm_stack.docker(
            "service", "update", "--detach", "--image", broken_image, swarm_stack.service("app")
        )
        swarm_stack.wait(
            180, lambda: _update_state(swarm_stack) == "rollback_completed", "automatic rollback"
        )
        time.sleep(2)
    _print(capsys, load.report("update to a broken image, rolled back"))
    status = swarm_stack.inspect("app")["UpdateStatus"]
    assert "rollback" in status["Message"]
    assert _app_image(swarm_stack) == good_image
    tasks = swarm_stack.running_tasks("app")
    assert {task["Spec"]["ContainerSpec"]["Image"] for task in tasks} == {good_image}
    # start-first: the good replicas were never stopped.
    assert swarm_stack.hostnames("app") == good_hostnames
    assert load.failed == 0, load.report("rollback")

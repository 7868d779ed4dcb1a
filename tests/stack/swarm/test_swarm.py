"""The stack on Docker Swarm: HTTPS through the proxy from every app replica,
the compose stack's locked-down containers and monitoring (mtail, Prometheus
rules), scaling and rolling updates under load with no failed request, each
leaving replica out of nginx's upstream before its stop signal, and an
automatic rollback of a broken release. Each load test prints its counts."""

from __future__ import annotations

import json
import statistics
import subprocess
import time

import httpx
import pytest

from tests.stack.swarm.conftest import APP_SECRET, APP_SETTING, swarm

pytestmark = [pytest.mark.integration]

GREETING = "Hello from the WSGI stack!\n"
SERVICES = ("app", "proxy", "mtail", "nginx-exporter", "prometheus", "alertmanager")


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


def _drain_report(what: str, margins: dict[str, float | None]) -> str:
    """One line: how long before its stop signal each replica left nginx."""
    known = sorted(m for m in margins.values() if m is not None)
    if not known:
        return f"drain on {what}: no replica stopped"
    before = sum(m > 0 for m in known)
    return (
        f"drain on {what}: {before} of {len(margins)} stopping replicas left nginx's upstream "
        f"before their stop signal, by {known[0]:.2f} to {known[-1]:.2f} s "
        f"(median {statistics.median(known):.2f} s)"
    )


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
    mounts = {mount["Target"]: mount["Type"] for mount in spec["Mounts"]}
    assert mounts == {"/run/nginx-log": "volume", "/tmp": "tmpfs"}, "no bind-mounted folder"
    assert not any("PRIVATE KEY" in variable for variable in spec.get("Env", []))
    # nginx (www-data) reads the key itself; nobody else can.
    key = swarm_stack.proxy_exec("stat", "-c", "%u %a", "/etc/nginx/certs/privkey.pem")
    assert key.split() == ["33", "400"]


def test_the_app_gets_its_env_file_and_its_secrets_as_swarm_secrets(swarm_stack):
    """APP_ENV_FILE and APP_SECRETS_DIR on a swarm: the settings in the app's environment,
    each secret file a Swarm secret at /run/secrets/<name> that only the app's user
    reads — never a bind-mounted folder, which could not follow the tasks to other
    nodes."""
    spec = swarm_stack.inspect("app")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert f"{APP_SETTING[0]}={APP_SETTING[1]}" in spec["Env"]
    (secret,) = spec["Secrets"]
    assert secret["File"]["Name"] == f"/run/secrets/{APP_SECRET[0]}"
    assert secret["SecretName"].startswith(f"{swarm_stack.name}_app_{APP_SECRET[0]}_")
    assert not any(mount["Type"] == "bind" for mount in spec.get("Mounts", []))
    path = f"/run/secrets/{APP_SECRET[0]}"
    assert swarm_stack.task_exec("app", "cat", path) == APP_SECRET[1]
    assert swarm_stack.task_exec("app", "stat", "-c", "%u %a", path).split() == ["10001", "400"]
    assert swarm_stack.task_exec("app", "printenv", APP_SETTING[0]).strip() == APP_SETTING[1]


def test_containers_are_locked_down(swarm_stack, capsys):
    """What Swarm applies of docker-compose.yml's hardening, read from each
    running container: read-only root filesystem, no capability, a non-root
    user, memory and pids limits, the compose tmpfs paths as tmpfs mounts."""
    lines = []
    for service in SERVICES:
        task = swarm_stack.running_tasks(service)[0]
        container = swarm_stack.docker("inspect", task["Status"]["ContainerStatus"]["ContainerID"])
        (info,) = json.loads(container)
        host = info["HostConfig"]
        assert host["ReadonlyRootfs"] is True, service
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], service
        assert info["Config"]["User"] not in ("", "0", "root"), service
        assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0, service
        tmpfs = sorted(m["Destination"] for m in info["Mounts"] if m["Type"] == "tmpfs")
        lines.append(
            f"{service}: user {info['Config']['User']}, read-only, cap_drop ALL, "
            f"{host['Memory'] >> 20} MiB, {host['PidsLimit']} pids, tmpfs {tmpfs or '-'}"
        )
    app = swarm_stack.inspect("app")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert {m["Target"] for m in app["Mounts"] if m["Type"] == "tmpfs"} == {"/run/metrics", "/tmp"}
    _print(capsys, "\n  ".join(lines))


def test_rate_limits_are_out_of_the_tests_way(swarm_stack):
    """Every request of these tests comes from one address: the fixture raised
    nginx's per-client limits, so the counts below measure the stack."""
    env = dict(
        item.split("=", 1)
        for item in swarm_stack.inspect("proxy")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    )
    assert {key: env[key] for key in swarm_stack.limits} == swarm_stack.limits
    rendered = swarm_stack.proxy_exec("cat", "/tmp/nginx/conf.d/limits.conf")
    assert f"rate={swarm_stack.limits['RATE_LIMIT']};" in rendered


def test_nginx_upstream_lists_every_task(swarm_stack):
    """UPSTREAM_HOST=tasks.app: every running app task, by its address on the
    backend network; with endpoint_mode dnsrr `app` names the same tasks."""
    addresses = set(swarm_stack.addresses("app").values())
    assert len(addresses) == 3

    def resolved(name: str) -> set[str]:
        return {
            line.split()[0]
            for line in swarm_stack.proxy_exec("getent", "ahosts", name).splitlines()
        }

    assert resolved("tasks.app") == addresses
    assert resolved("app") == addresses
    upstream = swarm_stack.proxy_exec("cat", "/tmp/nginx/conf.d/upstream.conf")
    listed = {
        line.split()[1].rsplit(":", 1)[0]
        for line in upstream.splitlines()
        if line.strip().startswith("server ")
    }
    assert listed == addresses
    assert "keepalive 32;" in upstream


def test_prometheus_scrapes_every_target_and_evaluates_the_rules(swarm_stack, capsys):
    """The compose monitoring, unchanged: every app task, the nginx exporter,
    mtail (reading nginx's metrics lines from the node's nginx-log volume)
    and Prometheus itself are up; the recording and alerting rules are loaded."""
    with swarm_stack.client() as client:
        for _ in range(20):
            assert client.get("/api/echo").status_code == 200
    with httpx.Client(base_url=swarm_stack.prometheus, timeout=10) as prometheus:

        def up() -> dict[str, list[str]]:
            targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
            jobs: dict[str, list[str]] = {}
            for target in targets:
                jobs.setdefault(target["labels"]["job"], []).append(target["health"])
            return jobs

        def ready() -> bool:
            jobs = up()
            seen = prometheus.get(
                "/api/v1/query",
                params={
                    "query": 'sum(http_server_request_duration_seconds_count{job="nginx-log"})'
                },
            ).json()["data"]["result"]
            return (
                len(jobs.get("app", [])) == 3
                and all(h == ["up"] for j, h in jobs.items() if j != "app")
                and jobs["app"] == ["up"] * 3
                and bool(seen)
                and float(seen[0]["value"][1]) >= 20
            )

        swarm_stack.wait(60, ready, "every target up and mtail counting nginx's requests")
        jobs = up()
        assert set(jobs) == {"app", "nginx", "nginx-log", "prometheus"}
        groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
        rules = [rule["name"] for group in groups for rule in group["rules"]]
        assert "TargetDown" in rules and any(name.startswith("job:") for name in rules)
    _print(capsys, f"prometheus: targets {dict(sorted(jobs.items()))}, {len(rules)} rules loaded")


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


@pytest.mark.slow
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

    with swarm_stack.load() as load, swarm_stack.stop_signals("app") as signals:
        time.sleep(2)
        scale(5)
        up = time.monotonic()
        five = swarm_stack.hostnames("app")
        # nginx resolves `tasks.app` again within a second: the new replicas get requests.
        swarm_stack.wait(
            20, lambda: set(load.hostnames_since(up)) == five, "requests on 5 replicas"
        )
        addresses = swarm_stack.addresses("app")
        scaled_down = time.time()
        scale(2)
        down = time.monotonic()
        two = swarm_stack.hostnames("app")
        time.sleep(3)
        scale(3)
        time.sleep(2)
    margins = swarm_stack.drain_margins(addresses, signals, scaled_down)
    _print(capsys, load.report("scale 3 → 5 → 2 → 3"))
    _print(capsys, _drain_report("scale 5 → 2", margins))
    assert set(load.hostnames_since(down)) >= two
    assert load.failed == 0, load.report("scale")
    assert set(load.statuses) == {200}
    assert load.sent > 100
    # The 3 replicas removed each left nginx's upstream (when: printed above).
    assert len(margins) == 3 and None not in margins.values(), margins


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_rolling_update_under_load_fails_no_request(swarm_stack, capsys):
    old_hostnames = swarm_stack.hostnames("app")
    new_image = f"{swarm_stack.name}/app:v2"
    _build(
        new_image, f"FROM {_app_image(swarm_stack)}\nLABEL org.opencontainers.image.version=v2\n"
    )
    addresses = swarm_stack.addresses("app")
    with swarm_stack.load() as load, swarm_stack.stop_signals("app") as signals:
        time.sleep(2)
        updated = time.time()
        swarm_stack.docker(
            "service", "update", "--detach", "--image", new_image, swarm_stack.service("app")
        )
        swarm_stack.wait(180, lambda: _update_state(swarm_stack) == "completed", "rolling update")
        done = time.monotonic()
        time.sleep(3)
    margins = swarm_stack.drain_margins(addresses, signals, updated)
    _print(capsys, load.report("rolling update to a new image"))
    _print(capsys, _drain_report("the rolling update", margins))
    assert len(margins) == 3 and None not in margins.values(), margins
    assert set(load.statuses) == {200}
    tasks = swarm_stack.running_tasks("app")
    assert len(tasks) == 3
    assert {task["Spec"]["ContainerSpec"]["Image"] for task in tasks} == {new_image}
    new_hostnames = swarm_stack.hostnames("app")
    assert not new_hostnames & old_hostnames
    assert set(load.hostnames_since(done)) == new_hostnames
    assert load.failed == 0, load.report("rolling update")
    assert load.sent > 100


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_broken_image_rolls_back_automatically(swarm_stack, capsys):
    good_image = _app_image(swarm_stack)
    good_hostnames = swarm_stack.hostnames("app")
    broken_image = f"{swarm_stack.name}/app:broken"
    # A release without its application: the server can't import it and exits.
    dockerfile = f"FROM {good_image}\nUSER root\nRUN rm -rf /srv/wsgistack_demo\nUSER app\n"
    _build(broken_image, dockerfile)
    with swarm_stack.load() as load:
        swarm_stack.docker(
            "service", "update", "--detach", "--image", broken_image, swarm_stack.service("app")
        )
        swarm_stack.wait(
            180, lambda: _update_state(swarm_stack) == "rollback_completed", "automatic rollback"
        )
        time.sleep(2)
    _print(capsys, load.report("update to a broken image, rolled back"))
    assert set(load.statuses) == {200}
    status = swarm_stack.inspect("app")["UpdateStatus"]
    assert "rollback" in status["Message"]
    assert _app_image(swarm_stack) == good_image
    tasks = swarm_stack.running_tasks("app")
    assert {task["Spec"]["ContainerSpec"]["Image"] for task in tasks} == {good_image}
    # start-first: the good replicas were never stopped.
    assert swarm_stack.hostnames("app") == good_hostnames
    assert load.failed == 0, load.report("rollback")


def test_a_deploy_that_does_not_converge_says_why(swarm_stack):
    """The timeout names each pending service with its newest task error and
    the last line its tasks wrote (what `docker stack deploy` never shows)."""
    namespace = f"{swarm_stack.name}-failing"
    name = f"{namespace}_starter"
    swarm_stack.docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", name,
        "--label", f"{swarm.NAMESPACE_LABEL}={namespace}", "--restart-delay", "1s",
        # Like the stack's images, a healthcheck: Swarm says Running only once healthy.
        "--health-cmd", "true", "--health-interval", "1s",
        "debian:bookworm-slim", "sh", "-c", "echo 'starter: cannot start' >&2; exit 2",
    )  # fmt: skip
    try:
        with pytest.raises(swarm.SwarmError) as raised:
            swarm.wait_converged(namespace, 15)
    finally:
        swarm_stack.docker("service", "rm", name)
    assert str(raised.value) == (
        f"{namespace} did not converge within 15 s: {name} 0/1 "
        "(task: non-zero exit (2); last log line: 'starter: cannot start')"
    )

"""Every running container of the stack, as Docker sees it (`docker inspect`):
unprivileged, read-only, without capabilities or a way to gain privileges,
bounded in memory, CPU and processes, with rotated logs and ports published on
127.0.0.1 only; no secret baked into any image; and the app's server running the
hot path its image compiled."""

from __future__ import annotations

import docker
import pytest

pytestmark = pytest.mark.integration

SERVICES = {"app", "proxy", "nginx-exporter", "mtail", "prometheus", "alertmanager"}


@pytest.fixture(scope="module")
def containers(stack):
    found = {c.labels["com.docker.compose.service"]: c for c in stack.containers()}
    assert set(found) == SERVICES, sorted(found)
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_container_is_locked_down(containers, service):
    attrs = containers[service].attrs
    config, host = attrs["Config"], attrs["HostConfig"]
    user = config["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"runs as {user!r}"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert "no-new-privileges:true" in (host["SecurityOpt"] or [])
    assert host["Privileged"] is False
    assert host["Memory"] > 0
    assert host["NanoCpus"] > 0
    assert host["PidsLimit"] and host["PidsLimit"] > 0
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"].get("max-size")
    assert host["LogConfig"]["Config"].get("max-file")
    for bindings in (host["PortBindings"] or {}).values():
        for binding in bindings:
            assert binding["HostIp"] == "127.0.0.1", binding


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_process_really_runs_unprivileged(containers, service):
    """What the kernel says about PID 1: its user and its capability sets."""
    result = containers[service].exec_run(["cat", "/proc/1/status"])
    assert result.exit_code == 0
    status = dict(line.split(":", 1) for line in result.output.decode().splitlines() if ":" in line)
    assert status["Uid"].split()[0] != "0"
    for capabilities in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[capabilities], 16) == 0, (capabilities, status[capabilities])
    assert status["NoNewPrivs"].strip() == "1"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_root_filesystem_refuses_writes(containers, service):
    result = containers[service].exec_run(["sh", "-c", "echo x > /usr/local/probe"])
    assert result.exit_code != 0
    assert b"Read-only file system" in result.output


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_secret_in_the_image(containers, service):
    """No private key anywhere in the image's filesystem and no secret-looking
    setting in its environment (a fresh container of the image, not the
    running one, which has the certificates mounted)."""
    image = containers[service].image
    env = image.attrs["Config"].get("Env") or []
    suspicious = [
        e for e in env if any(w in e.split("=")[0] for w in ("PASSWORD", "SECRET", "TOKEN", "KEY"))
    ]
    assert not suspicious, suspicious
    output = docker.from_env().containers.run(
        image.id,
        entrypoint=["sh", "-c"],
        command=[
            "grep -rlsI -e 'PRIVATE KEY-----' / --exclude-dir=proc --exclude-dir=sys "
            "--exclude-dir=dev || true"
        ],
        user="0",
        network_disabled=True,
        remove=True,
    )
    assert output.decode().split() == []


def test_the_app_server_runs_the_hot_path_its_image_compiled(containers):
    """The app image's wheel is compiled in its build stage (Dockerfile) and the
    server running in the container has those extension modules loaded: its
    processes map the compiled parser (hot path: compiled), not its .py source."""
    script = (
        "for maps in /proc/[0-9]*/maps; do "
        'grep -q \'wsgistack/http/parser.cpython-.*\\.so\' "$maps" 2>/dev/null && echo "$maps"; '
        "done; true"
    )
    result = containers["app"].exec_run(["sh", "-c", script])
    mapped = result.output.decode().split()
    print(f"\n  processes with the compiled parser mapped: {mapped}")
    assert len(mapped) >= 2, "the server's master and workers should run the compiled hot path"

"""Stopping and failing: graceful stop of the app container, and a container
that exits when one of its programs fails for good. These disturb the stack,
so they run last (marker `disruptive`)."""

from __future__ import annotations

import io
import tarfile
import time

import docker
import pytest

from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

SUPERVISORCTL = ["supervisorctl", "-c", "/etc/supervisor/supervisord.conf"]
# An app whose import fails after startsecs (3 s), when supervisord has counted the start good.
SLOW_BROKEN = b'import time\n\ntime.sleep(6)\nraise RuntimeError("slow_broken fails on purpose")\n'


def _app_container(stack, environment: dict[str, str]):
    """A created (not started) container of the stack's app image, alone: no network."""
    return docker.from_env().containers.create(
        stack.container("app").image.id,
        # the stack's worker count: each worker of gunicorn's imports the app
        environment={"WEB_CONCURRENCY": stack.env["WEB_CONCURRENCY"], **environment},
        tmpfs={"/run/metrics": "uid=10001,gid=10001", "/tmp": "uid=10001,gid=10001,mode=0700"},
        network_disabled=True,
    )


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("engine", "app_module"),
    [
        ("wsgistack", "missing:app"),
        pytest.param("wsgistack", "slow_broken:app", marks=pytest.mark.slow),
        ("gunicorn", "missing:app"),
        pytest.param("gunicorn", "slow_broken:app", marks=pytest.mark.slow),
    ],
)
def test_an_app_that_fails_to_import_ends_the_container_after_one_start(stack, engine, app_module):
    """The server exits 3 (gunicorn: 3, or 1 when two workers fail at once) and
    supervisord does not start it again, whether the import fails fast (within
    startsecs: FATAL) or slowly (EXITED); the listener ends the container."""
    container = _app_container(stack, {"WSGI_SERVER": engine, "APP_MODULE": app_module})
    try:
        container.put_archive("/srv", _tar("slow_broken.py", SLOW_BROKEN))
        container.start()
        status = container.wait(timeout=120)["StatusCode"]
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status == 137, logs  # the listener's SIGKILL of supervisord, not a clean 0
    how = "exited with status" if app_module.startswith("slow") else "could not be started"
    assert f"fatal_listener: server {how}" in logs, logs
    if engine == "wsgistack":
        assert logs.count("config: app=") == 1, logs  # one start
        assert logs.count("Traceback (most recent call last)") == 1, logs
        assert logs.count("cannot load") + logs.count("failed to load the application") == 1
        if app_module.startswith("slow"):
            assert "fatal_listener: server exited with status 3" in logs, logs
    else:
        assert logs.count("Starting gunicorn") == 1, logs  # one start (a traceback per worker)
        assert "Worker failed to boot" in logs, logs


@pytest.mark.slow
def test_supervisorctl_stop_does_not_end_the_container(stack):
    container = _app_container(stack, {})
    try:
        container.start()

        def server_state() -> str:
            result = container.exec_run([*SUPERVISORCTL, "status", "server"])
            return result.output.decode()

        assert wait_until(lambda: "RUNNING" in server_state(), 60, interval=0.5)
        assert container.exec_run([*SUPERVISORCTL, "stop", "server"]).exit_code == 0
        assert "STOPPED" in server_state()
        # Still up: supervisord answers, starts the server again, and stops cleanly.
        assert container.exec_run([*SUPERVISORCTL, "start", "server"]).exit_code == 0
        assert "RUNNING" in server_state()
        container.stop(timeout=30)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert "fatal_listener" not in container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@pytest.mark.slow
def test_exporter_failing_for_good_ends_the_container(stack):
    app = stack.container("app")
    restarts = app.attrs["RestartCount"]
    # Kill the exporter each time supervisord starts it, until it gives up (FATAL).
    stack.container("app").exec_run(
        [
            "sh",
            "-c",
            "for i in $(seq 1 60); do p=$(supervisorctl -c /etc/supervisor/supervisord.conf pid "
            'exporter); [ "$p" -gt 0 ] 2>/dev/null && kill -9 $p; sleep 0.2; done',
        ],
    )

    def restarted() -> bool:
        app.reload()
        return app.attrs["RestartCount"] > restarts

    def healthy() -> bool:
        app.reload()
        return app.attrs["State"].get("Health", {}).get("Status") == "healthy"

    assert wait_until(restarted, 60, interval=1), "the container did not exit and restart"
    # Docker's restart policy brings it back healthy.
    assert wait_until(healthy, 90, interval=1), app.attrs["State"].get("Health")


def test_docker_stop_is_a_graceful_shutdown(stack):
    app = stack.container("app")
    started = time.monotonic()
    app.stop(timeout=30)
    took = time.monotonic() - started
    app.reload()
    assert app.attrs["State"]["ExitCode"] == 0
    assert took < 25, f"stop took {took:.1f} s, too close to the 30 s stop timeout"
    logs = app.logs(tail=50).decode()
    assert "stopping (SIGTERM, graceful)" in logs


@pytest.mark.slow
def test_wsgi_server_switches_to_gunicorn_and_back(stack):
    def serve_with(engine: str) -> None:
        result = stack.compose("up", "-d", "--wait", "app", WSGI_SERVER=engine)
        assert result.returncode == 0, result.stderr

    try:
        serve_with("gunicorn")
        assert "Starting gunicorn" in stack.container("app").logs(tail=200).decode()
        before = stack.request_count("POST", 200)
        with stack.client() as client:
            for _ in range(5):
                response = client.post("/api/upload", content=b"abc")
                assert response.json()["bytes"] == 3
        # gunicorn's workers record the same metrics, so the engines compare in one Prometheus.
        wait_until(lambda: stack.request_count("POST", 200) - before >= 5, 5, interval=0.2)
        assert stack.request_count("POST", 200) - before == 5
        # the server's health path is answered under gunicorn too (gunicorn.conf.py)
        with stack.client() as client:
            health = client.get("/-/ready")
        assert (health.status_code, health.text) == (200, "ok\n")
    finally:
        serve_with("wsgistack")
    assert "Starting gunicorn" not in stack.container("app").logs(tail=200).decode()
    with stack.client() as client:
        assert client.get("/").status_code == 200


def test_the_app_gets_its_env_file_and_its_secret_files(stack, tmp_path):
    """APP_ENV_FILE's settings are in the app's environment; APP_SECRETS_DIR's files are
    /run/secrets/<name>, read-only, readable by the app's user; neither in the image."""
    (tmp_path / "app.env").write_text("SHOP_CURRENCY=EUR\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_token").write_text("s3cret-t0ken")
    (secrets / "api_token").chmod(0o644)  # the app's user (10001) reads it
    settings = {"APP_ENV_FILE": str(tmp_path / "app.env"), "APP_SECRETS_DIR": str(secrets)}

    def run(*command: str) -> tuple[int, str]:
        result = stack.container("app").exec_run(list(command), user="10001")
        return result.exit_code, result.output.decode()

    try:
        result = stack.compose("up", "-d", "--wait", "app", **settings)
        assert result.returncode == 0, result.stderr
        assert run("printenv", "SHOP_CURRENCY") == (0, "EUR\n")
        assert run("cat", "/run/secrets/api_token") == (0, "s3cret-t0ken")
        code, output = run("sh", "-c", "echo x > /run/secrets/api_token")
        assert code != 0 and "Read-only file system" in output
    finally:
        result = stack.compose("up", "-d", "--wait", "app")
        assert result.returncode == 0, result.stderr
    assert run("printenv", "SHOP_CURRENCY")[0] == 1  # gone with the settings
    assert run("ls", "-A", "/run/secrets") == (0, ".gitkeep\n")  # the empty default

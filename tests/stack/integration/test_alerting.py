"""Alerts reach someone: Prometheus sends what fires to Alertmanager
(monitoring/alertmanager/), which delivers it to the receiver set in .env.

End to end: a webhook receiver (a few lines of Python in a container of the
app image, on the stack's backend network) and a rule that always fires,
mounted into Prometheus for this test only; Alertmanager is recreated with
ALERT_WEBHOOK_URL pointing at the receiver, and the alert must arrive there.
Both services get the session's configuration back afterwards. The rendered
configuration is checked with amtool from the image, and a bad setting stops
the container with one line naming it."""

from __future__ import annotations

import json
import time

import docker
import httpx
import pytest

from tests.support import wait_until

pytestmark = pytest.mark.integration

ALERT = "AlertDeliveryCheck"
# An always-firing rule: firing from the first evaluation (5 s), no `for:`.
RULE = f"""groups:
  - name: alert-delivery-check
    rules:
      - alert: {ALERT}
        expr: vector(1)
        labels:
          severity: none
        annotations:
          summary: fired by tests/stack/integration/test_alerting.py
"""
# Prints every POSTed body on one line of its stdout (the container's log).
RECEIVER = """
import http.server

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        print(body.decode().replace("\\n", " "), flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("", 8000), Receiver).serve_forever()
"""
# Alertmanager's first notification for a group: group_wait (30 s) after it
# got the alert; Prometheus evaluates every 5 s.
DELIVERY_TIMEOUT = 90


def _image(stack, service: str) -> str:
    return f"{stack.compose_env['COMPOSE_PROJECT_NAME']}/{service}:latest"


def _alertmanager(stack, environment: dict[str, str], command: str) -> str:
    """Run ``command`` (sh) in a throw-away container of the Alertmanager image."""
    return (
        docker.from_env()
        .containers.run(
            _image(stack, "alertmanager"),
            ["-c", command],
            entrypoint="sh",
            environment=environment,
            network_disabled=True,
            remove=True,
        )
        .decode()
    )


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"ALERT_WEBHOOK_URL": "https://hooks.example.org/alerts?token=a'b"},
        {
            "ALERT_EMAIL_TO": "oncall@example.org",
            "ALERT_SMTP_SMARTHOST": "smtp.example.org:587",
            "ALERT_SMTP_FROM": "alertmanager@example.org",
        },
        {
            "ALERT_WEBHOOK_URL": "http://receiver:8000/",
            "ALERT_EMAIL_TO": "oncall@example.org",
            "ALERT_SMTP_SMARTHOST": "smtp.example.org:587",
            "ALERT_SMTP_FROM": "alertmanager@example.org",
            "ALERT_SMTP_AUTH_USERNAME": "alertmanager",
            "ALERT_SMTP_AUTH_PASSWORD": "p'a\"ss: #word",
        },
    ],
    ids=["none", "webhook", "email", "both"],
)
def test_amtool_accepts_the_rendered_config(stack, environment):
    output = _alertmanager(
        stack,
        environment,
        "render-config.sh >/tmp/alertmanager.yml 2>/dev/null"
        " && amtool check-config /tmp/alertmanager.yml",
    )
    assert "SUCCESS" in output
    assert " - 1 receivers" in output


def test_a_bad_setting_stops_the_container_with_one_line(stack):
    with pytest.raises(docker.errors.ContainerError) as error:
        docker.from_env().containers.run(
            _image(stack, "alertmanager"),
            environment={"ALERT_WEBHOOK_URL": "hooks.example.org/alerts"},
            network_disabled=True,
            remove=True,
            stderr=True,
        )
    assert error.value.exit_status == 2
    lines = error.value.stderr.decode().splitlines()
    assert len(lines) == 1 and "ALERT_WEBHOOK_URL" in lines[0], lines


def test_without_a_receiver_the_log_says_where_alerts_go(stack):
    log = stack.container("alertmanager").logs().decode()
    assert "no receiver configured (ALERT_WEBHOOK_URL, ALERT_EMAIL_TO)" in log


def test_prometheus_sends_its_alerts_to_alertmanager(stack):
    def active() -> list[str]:
        answer = httpx.get(f"{stack.prometheus}/api/v1/alertmanagers").json()
        return [a["url"] for a in answer["data"]["activeAlertmanagers"]]

    assert wait_until(active, 30, interval=1) == ["http://alertmanager:9093/api/v2/alerts"]


def _deliveries(container) -> list[dict]:
    """The notifications the receiver has printed so far."""
    lines = container.logs(stderr=False).decode().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.disruptive  # recreates prometheus and alertmanager (and puts them back)
def test_a_firing_alert_reaches_the_webhook(stack, tmp_path, report):
    project = stack.compose_env["COMPOSE_PROJECT_NAME"]
    rule = tmp_path / "alert-delivery-check.yml"
    rule.write_text(RULE)
    rule.chmod(0o644)
    tmp_path.chmod(0o755)
    # Prometheus sends a firing alert again every resend delay (1 min): the
    # first send may find no Alertmanager yet while Prometheus starts.
    client = docker.from_env()
    command = client.images.get(_image(stack, "prometheus")).attrs["Config"]["Cmd"]
    override = tmp_path / "compose.alerting.yml"
    override.write_text(
        "services:\n"
        "  prometheus:\n"
        f"    command: {json.dumps([*command, '--rules.alert.resend-delay=5s'])}\n"
        "    volumes:\n"
        f"      - {rule}:/etc/prometheus/rules/alert-delivery-check.yml:ro\n"
    )
    for leftover in client.containers.list(all=True, filters={"name": f"{project}-alert-receiver"}):
        leftover.remove(force=True)  # from an interrupted run
    receiver = client.containers.run(
        _image(stack, "app"),
        ["-u", "-c", RECEIVER],
        entrypoint="python",
        name=f"{project}-alert-receiver",
        network=f"{project}_backend",
        read_only=True,
        cap_drop=["ALL"],
        healthcheck={"test": ["NONE"]},  # the app image's asks port 8000 for /-/ready
        detach=True,
    )
    services = ("prometheus", "alertmanager")
    try:
        up = stack.compose(
            *("-f", "docker-compose.yml", "-f", str(override)),
            *("up", "-d", "--no-deps", "--wait", *services),
            ALERT_WEBHOOK_URL=f"http://{project}-alert-receiver:8000/alerts",
        )
        assert up.returncode == 0, up.stderr
        started = time.monotonic()

        def delivered() -> list[dict]:
            return [
                alert
                for message in _deliveries(receiver)
                for alert in message["alerts"]
                if alert["labels"]["alertname"] == ALERT and alert["status"] == "firing"
            ]

        found = wait_until(delivered, DELIVERY_TIMEOUT, interval=2)
        assert found, f"{ALERT} not at the webhook within {DELIVERY_TIMEOUT} s"
        report(f"alert at the webhook {time.monotonic() - started:.0f} s after the restart")
        alert = found[0]
        assert alert["labels"]["severity"] == "none"
        assert alert["annotations"]["summary"].startswith("fired by")
        assert _deliveries(receiver)[0]["receiver"] == "default"
    finally:
        receiver.remove(force=True)
        restored = stack.compose("up", "-d", "--no-deps", "--wait", *services)
        assert restored.returncode == 0, restored.stderr

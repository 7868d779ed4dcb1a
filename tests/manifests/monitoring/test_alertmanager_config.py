"""Alertmanager's configuration, rendered from the environment by
monitoring/alertmanager/render-config.sh (run here with the host's sh): the
receiver each setting makes, values that survive YAML quoting, one line naming
the setting for a bad value, and every setting passed through by
docker-compose.yml and listed in .env.example. (amtool checks the rendered
files inside the built image: tests/stack/integration/test_alerting.py.)"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.support import ROOT

SCRIPT = ROOT / "monitoring" / "alertmanager" / "render-config.sh"
SETTINGS = re.findall(r"^#\s+(ALERT_\w+)", SCRIPT.read_text(), re.M)
EMAIL = {
    "ALERT_EMAIL_TO": "oncall@example.org",
    "ALERT_SMTP_SMARTHOST": "smtp.example.org:587",
    "ALERT_SMTP_FROM": "alertmanager@example.org",
}


def render(**environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(SCRIPT)],
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        timeout=10,
    )


def receiver(**environment: str) -> dict:
    result = render(**environment)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    (only,) = config["receivers"]
    assert config["route"]["receiver"] == only["name"]
    return only


def test_the_settings_are_the_documented_six():
    assert SETTINGS == [
        "ALERT_WEBHOOK_URL",
        "ALERT_EMAIL_TO",
        "ALERT_SMTP_SMARTHOST",
        "ALERT_SMTP_FROM",
        "ALERT_SMTP_AUTH_USERNAME",
        "ALERT_SMTP_AUTH_PASSWORD",
    ]


def test_no_receiver_keeps_alerts_in_alertmanager_and_says_so():
    result = render()
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["receivers"] == [{"name": "default"}]
    assert result.stderr.splitlines() == [
        "alertmanager: no receiver configured (ALERT_WEBHOOK_URL, ALERT_EMAIL_TO):"
        " alerts are kept in Alertmanager only (its API; amtool alert query)"
    ]


def test_a_webhook_url_makes_a_webhook_receiver():
    url = "https://hooks.example.org/alerts?token=it's: #1"
    assert receiver(ALERT_WEBHOOK_URL=url) == {"name": "default", "webhook_configs": [{"url": url}]}
    assert render(ALERT_WEBHOOK_URL=url).stderr == ""


def test_an_address_makes_an_email_receiver():
    assert receiver(**EMAIL)["email_configs"] == [
        {
            "to": "oncall@example.org",
            "from": "alertmanager@example.org",
            "smarthost": "smtp.example.org:587",
        }
    ]


def test_smtp_login_and_both_receivers():
    password = "p'a\"ss: #word\\"
    found = receiver(
        **EMAIL,
        ALERT_WEBHOOK_URL="http://receiver:8000/",
        ALERT_SMTP_AUTH_USERNAME="alertmanager",
        ALERT_SMTP_AUTH_PASSWORD=password,
    )
    assert found["webhook_configs"] == [{"url": "http://receiver:8000/"}]
    (email,) = found["email_configs"]
    assert email["auth_username"] == "alertmanager"
    assert email["auth_password"] == password


@pytest.mark.parametrize(
    ("environment", "setting"),
    [
        ({"ALERT_WEBHOOK_URL": "hooks.example.org/alerts"}, "ALERT_WEBHOOK_URL"),
        ({"ALERT_WEBHOOK_URL": "http://"}, "ALERT_WEBHOOK_URL"),
        ({"ALERT_WEBHOOK_URL": "http://a/\nb"}, "ALERT_WEBHOOK_URL"),
        ({"ALERT_EMAIL_TO": "oncall"}, "ALERT_EMAIL_TO"),
        ({**EMAIL, "ALERT_SMTP_SMARTHOST": ""}, "ALERT_SMTP_SMARTHOST"),
        ({**EMAIL, "ALERT_SMTP_SMARTHOST": "smtp.example.org"}, "ALERT_SMTP_SMARTHOST"),
        ({**EMAIL, "ALERT_SMTP_SMARTHOST": "smtp.example.org:smtp"}, "ALERT_SMTP_SMARTHOST"),
        ({**EMAIL, "ALERT_SMTP_FROM": ""}, "ALERT_SMTP_FROM"),
        ({**EMAIL, "ALERT_SMTP_AUTH_PASSWORD": "secret"}, "ALERT_SMTP_AUTH_PASSWORD"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_the_setting(environment, setting):
    result = render(**environment)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"alertmanager: {setting} ")


def test_compose_and_env_example_carry_every_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["services"]["alertmanager"]["environment"]
    assert environment == {name: f"${{{name}:-}}" for name in SETTINGS}
    example = (ROOT / ".env.example").read_text()
    for name in SETTINGS:
        assert re.search(rf"^{name}=$", example, re.M), name


def test_prometheus_sends_alerts_to_the_alertmanager_service():
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "backend" in compose["services"]["alertmanager"]["networks"]

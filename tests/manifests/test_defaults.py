"""Every server default is written once, in the settings table
(``wsgistack.config.SETTINGS``); the files that repeat one for another
component (nginx, Kubernetes, the stack's .env) are checked against it here,
and docker-compose.yml passes values through without a default of its own.
The docs' Server reference page is generated from the table
(tests/manifests/docs/ checks it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from wsgistack.config import default

from tests.support import ROOT

# The stack's variable -> the server setting it sets.
STACK_VARIABLES = {
    "LIMIT_REQUEST_BODY": "limit_request_body",
    "LIMIT_REQUEST_LINE": "limit_request_line",
    "LIMIT_REQUEST_FIELD_SIZE": "limit_request_field_size",
    "LIMIT_REQUEST_FIELDS": "limit_request_fields",
    "WEB_CONCURRENCY": "workers",
    "WSGISTACK_THREADS": "threads",
}


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


@pytest.mark.parametrize("variable", sorted(set(STACK_VARIABLES) - {"WEB_CONCURRENCY"}))
def test_env_example_holds_the_servers_defaults(variable):
    assert _env_file(ROOT / ".env.example")[variable] == str(default(STACK_VARIABLES[variable]))


def test_env_example_leaves_the_workers_to_the_container():
    """Its default is the app container's (app/container/workers.py), from its CPUs."""
    assert _env_file(ROOT / ".env.example")["WEB_CONCURRENCY"] == ""


def test_compose_passes_the_server_settings_through_without_defaults():
    compose = (ROOT / "docker-compose.yml").read_text()
    for variable in STACK_VARIABLES:
        assert re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", compose), variable
        assert set(re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", compose)) == {""}, variable


def test_nginx_entrypoint_defaults_are_the_servers():
    """nginx refuses what the server would refuse, at the first hop (414, 431, 413)."""
    script = (ROOT / "nginx/entrypoint.sh").read_text()
    found = dict(re.findall(r"\$\{(LIMIT_REQUEST_\w+):=(\d+)\}", script))
    assert set(found) == {"LIMIT_REQUEST_BODY", "LIMIT_REQUEST_LINE", "LIMIT_REQUEST_FIELD_SIZE"}
    for variable, value in found.items():
        assert value == str(default(STACK_VARIABLES[variable])), variable


def _container_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return env


def test_kubernetes_manifests_use_the_servers_defaults():
    app = _container_env(ROOT / "deploy/k8s/base/app.yaml")
    proxy = _container_env(ROOT / "deploy/k8s/base/proxy.yaml")
    for variable, setting in STACK_VARIABLES.items():
        if variable.startswith("LIMIT_"):
            assert app["WSGISTACK_" + variable] == str(default(setting)), variable
            if variable != "LIMIT_REQUEST_FIELDS":  # nginx has no count limit
                assert proxy[variable] == str(default(setting)), variable


def test_acme_defaults_are_written_once_in_certbots_script():
    """ACME's settings: the default in certbot/acme.sh, the same value in
    .env.example (its documentation), none in docker-compose.yml."""
    script = (ROOT / "certbot/acme.sh").read_text()
    found = dict(re.findall(r'"\$\{((?:ACME_|DOMAIN)\w*):=([^}]*)\}"', script))
    assert set(found) == {"DOMAIN", "ACME_EMAIL", "ACME_DIRECTORY"}
    assert found["ACME_DIRECTORY"] == "https://acme-v02.api.letsencrypt.org/directory"
    env = _env_file(ROOT / ".env.example")
    compose = (ROOT / "docker-compose.yml").read_text()
    for variable, value in found.items():
        assert env[variable] == value, variable
        assert set(re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", compose)) == {""}, variable

"""Check the stack's settings before `make up` starts anything.

    python3 scripts/preflight.py [COMPOSE FLAGS, e.g. --env-file FILE or -f FILE ...]

One line per problem, naming the .env variable; exit 2 if there is any. The
values are the ones compose would pass (``docker compose config``), checked
by the validators that will read them, in the built images: the app's through
its server (``start.sh --check-config``: ``wsgistack --check-config``), nginx's
through its entrypoint (``entrypoint.sh check``), certbot's (DOMAIN set: the
`acme` profile) through ``acme.sh check``. What only this host can tell
is checked here: TLS_CERT_DIR holds the certificate, the published ports are
free (or published by this project already). Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

# Each service, the command that checks its settings in its image, and the
# exit statuses that mean a bad setting (others: the check itself broke).
CHECKS = {
    "proxy": (["check"], {2}),
    "app": (["/etc/supervisor/start.sh", "--check-config"], {1, 2, 3}),
    "certbot": (["check"], {2}),
}
CERT_TARGET = "/etc/nginx/certs"
CERT_FILES = ("fullchain.pem", "privkey.pem")


def compose(flags: list[str], *args: str) -> str:
    result = subprocess.run(
        ["docker", "compose", *flags, *args], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        sys.exit(f"preflight: docker compose {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def variable(raw: str) -> str | None:
    """The variable a compose value is read from: ``${HTTP_PORT:-8080}`` -> HTTP_PORT."""
    found = re.findall(r"\$\{(\w+)", raw)
    return found[-1] if found else None


def mapping(environment: dict | list | None) -> dict:
    """A service's environment as a dict (merged files give a list of NAME=VALUE)."""
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return environment or {}


def settings_problems(service: str, spec: dict, raw: dict) -> list[tuple[str, str]]:
    """(variable, message) from the service's own check, run in its image."""
    command, bad = CHECKS[service]
    env = mapping(spec.get("environment"))
    names = {name: variable(str(value)) or name for name, value in mapping(raw).items()}
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", *(f"-e{name}" for name in env)]
        + [spec["image"], *command],
        env={**os.environ, **{k: "" if v is None else str(v) for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode == 0:
        return []
    lines = [line for line in result.stderr.splitlines() if line.strip()] or ["(no output)"]
    if result.returncode not in bad:
        return [("", f"{service}: its check failed ({result.returncode}): {lines[-1]}")]
    errors = [line for line in lines if re.match(r"(error|entrypoint|start|acme): ", line)]
    if errors:  # a bad value: the line names the container's variable
        message = errors[-1].split(": ", 1)[1]
        named = [
            stack
            for name, stack in sorted(names.items(), key=lambda item: -len(item[0]))
            if re.search(rf"(?<![\w-]){re.escape(name)}\b", message)
        ]
        return [(named[0] if named else "", f"{service}: {message}")]
    # The settings are good but the app cannot be imported: its last line.
    app = env.get("APP_MODULE", "")
    return [(names.get("APP_MODULE", "APP_MODULE"), f"{service}: cannot import {app}: {lines[-1]}")]


def cert_problems(spec: dict, raw: dict) -> list[tuple[str, str]]:
    raw_sources = {m.get("target"): str(m.get("source", "")) for m in raw.get("volumes", [])}
    for mount in spec.get("volumes", []):
        if mount.get("target") != CERT_TARGET:
            continue
        name = variable(raw_sources.get(CERT_TARGET, "")) or CERT_TARGET
        folder = Path(mount["source"])
        if not folder.is_dir():
            return [(name, f"{folder} is not a folder (it must hold {' and '.join(CERT_FILES)})")]
        missing = [f for f in CERT_FILES if not (folder / f).is_file()]
        if missing:
            return [(name, f"{folder} has no {' and no '.join(missing)}")]
    return []


def published_by_project(flags: list[str]) -> set[int]:
    """The host ports this project's running containers publish already."""
    text = compose(flags, "ps", "--format", "json").strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(r) for r in text.splitlines()]
    return {p["PublishedPort"] for row in rows for p in row.get("Publishers") or []}


def port_problems(config: dict, raw: dict, ours: set[int]) -> list[tuple[str, str]]:
    found = []
    for service, spec in config["services"].items():
        raw_ports = (raw["services"].get(service) or {}).get("ports") or []
        for port in spec.get("ports") or []:
            published = int(port.get("published") or 0)
            if not published or published in ours:
                continue
            name = next(
                (
                    variable(r.rsplit(":", 1)[0]) or ""
                    for r in map(str, raw_ports)
                    if re.search(rf":{port['target']}(/\w+)?$", r)
                ),
                "",
            )
            host = port.get("host_ip") or "0.0.0.0"
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, published))
                except OSError as exc:
                    found.append((name, f"{service}: {host}:{published}: {exc.strerror}"))
    return found


def main(flags: list[str]) -> int:
    config = json.loads(compose(flags, "config", "--format", "json"))
    raw = json.loads(compose(flags, "config", "--no-interpolate", "--format", "json"))
    label = flags[flags.index("--env-file") + 1] if "--env-file" in flags else ".env"
    problems = cert_problems(config["services"]["proxy"], raw["services"]["proxy"])
    problems += port_problems(config, raw, published_by_project(flags))
    for service in [service for service in CHECKS if service in config["services"]]:
        for name, message in settings_problems(
            service, config["services"][service], raw["services"][service].get("environment")
        ):
            if not name or name not in {n for n, _ in problems}:  # both hops: one line
                problems.append((name, message))
    for name, message in problems:
        print(f"{label}: {name + ': ' if name else ''}{message}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

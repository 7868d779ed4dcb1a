"""Deploy the compose stack to Docker Swarm, and remove it.

    python deploy/swarm/swarm.py deploy [--env-file FILE] STACK
    python deploy/swarm/swarm.py undeploy [--volumes] STACK
    python deploy/swarm/swarm.py render [--env-file FILE] STACK

`deploy` needs an engine that is a swarm manager (`docker swarm init` makes a
single-node swarm). It builds the images with compose (`docker stack deploy`
ignores `build:`) and tags each with its image id, so that a changed image is
a changed service spec and Swarm rolls it out (a fixed `:latest` would not
change, and a swarm without a registry can't resolve digests). It merges
docker-compose.yml with deploy/swarm/stack.yml through `docker compose config`
(which reads .env and applies the override's `!reset`/`!override`), adapts
the result to the stack file format and to what Swarm can do (`stack_file`;
it says what Swarm can't apply), runs `docker stack deploy`, and waits until
every service runs all its tasks, healthy, with no update in progress.
`render` prints the stack file instead of deploying it.

`undeploy` runs `docker stack rm` and waits until the stack's containers and
networks are gone; `--volumes` then removes its volumes (Prometheus' data).

Every wait is bounded; a failure exits non-zero with one line saying what.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ["docker-compose.yml", "deploy/swarm/stack.yml"]
NAMESPACE_LABEL = "com.docker.stack.namespace"
DEPLOY_TIMEOUT = 300.0  # seconds for every service to converge
REMOVE_TIMEOUT = 120.0  # seconds for the stack's containers and networks to go
# Keys of a compose port that the stack file format (docker/cli's compose
# schema 3.x) has no place for: Swarm publishes on every address of a node.
PORT_KEYS = ("target", "published", "protocol", "mode")


class SwarmError(Exception):
    """A step failed; the message says which and why, in one line."""


def stack_file(model: dict[str, Any]) -> dict[str, Any]:
    """The stack file for `docker stack deploy`, from `docker compose config --format json`.

    ``model`` is the merged, interpolated Compose model (compose-spec). The
    stack loader (docker/cli, compose schema 3.x) predates the spec, so this
    removes what it rejects and changes nothing else: the top-level ``name``
    (the stack's name is deploy's argument), service keys whose value is null
    (JSON output writes unset fields as null), port keys other than
    PORT_KEYS (``host_ip``); and it writes the values whose type differs:
    ``published`` as an integer (the spec's string allows ranges, which Swarm
    can't publish; docker/cli#1073), ``cpus`` as a string, secret and config
    ``mode`` as a number. Two hardening keys Swarm has not (swarm_gaps() names
    them): a service's ``tmpfs`` paths become ``type: tmpfs`` mounts (the stack
    loader would ignore the key silently; the stack format can't set their
    owner or mode: Docker makes them root's, with the mode of the image's
    folder there), and ``security_opt`` goes (no service option for it).
    Raises SwarmError for a port range.
    """
    model = copy.deepcopy(model)
    stack = {key: value for key, value in model.items() if key != "name"}
    services = {}
    for name, service in model.get("services", {}).items():
        service = {key: value for key, value in service.items() if value is not None}
        service.pop("security_opt", None)
        if "tmpfs" in service:
            mounts = [
                {"type": "tmpfs", "target": entry.split(":")[0]} for entry in service["tmpfs"]
            ]
            service["volumes"] = service.get("volumes", []) + mounts
            del service["tmpfs"]
        if "ports" in service:
            service["ports"] = [_stack_port(name, port) for port in service["ports"]]
        for kind in ("secrets", "configs"):
            if kind in service:
                service[kind] = [_stack_file_ref(ref) for ref in service[kind]]
        resources = service.get("deploy", {}).get("resources", {})
        for bound in resources.values():
            if "cpus" in bound:
                bound["cpus"] = str(bound["cpus"])
        services[name] = service
    stack["services"] = services
    return stack


def swarm_gaps(model: dict[str, Any]) -> list[str]:
    """What of ``model`` (as for stack_file) Swarm can't apply, one line per
    kind naming the services: ``security_opt`` (no-new-privileges) and the
    options of ``tmpfs`` mounts (owner, mode)."""
    services = model.get("services", {})
    gaps = []
    secure = sorted(name for name, service in services.items() if service.get("security_opt"))
    if secure:
        gaps.append(f"security_opt (no service option in Swarm): {', '.join(secure)}")
    tmpfs = sorted(
        name
        for name, service in services.items()
        if any(":" in entry for entry in service.get("tmpfs") or [])
    )
    if tmpfs:
        gaps.append(f"tmpfs owner and mode (root's, the image's mode): {', '.join(tmpfs)}")
    return gaps


def _stack_file_ref(ref: dict[str, Any]) -> dict[str, Any]:
    """A service's secret or config reference with ``mode`` as a number.

    Compose writes a file mode as an octal string ("0444"); the stack format
    wants the number."""
    if isinstance(ref.get("mode"), str):
        return {**ref, "mode": int(ref["mode"], 8)}
    return ref


def _stack_port(service: str, port: dict[str, Any]) -> dict[str, Any]:
    """One long-syntax port as the stack format wants it; see stack_file."""
    port = {key: value for key, value in port.items() if key in PORT_KEYS}
    if "published" in port:
        published = str(port["published"])
        if not published.isdigit():
            raise SwarmError(f"services.{service}.ports: Swarm can't publish {published!r}")
        port["published"] = int(published)
    return port


def tls_version(cert_dir: Path) -> str:
    """12 hex digits of SHA-256 over fullchain.pem and privkey.pem in ``cert_dir``.

    Names the TLS secrets: Swarm secrets are immutable, so a new pair must be a
    new secret. Raises SwarmError when a file is missing.
    """
    digest = hashlib.sha256()
    for name in ("fullchain.pem", "privkey.pem"):
        try:
            digest.update((cert_dir / name).read_bytes())
        except OSError as exc:
            raise SwarmError(
                f"TLS_CERT_DIR: can't read {cert_dir / name}: {exc.strerror}"
            ) from None
    return digest.hexdigest()[:12]


SECRETS_TARGET = "/run/secrets"  # where the app finds its secret files (APP_SECRETS_DIR)
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # Docker's secret names, in short
APP_UID = "10001"  # the app image's user, who must read its secrets


def app_secrets(model: dict[str, Any], stack: str) -> None:
    """The app's secret files as Swarm secrets, as the TLS pair: in ``model`` (the merged
    compose model), the app's read-only bind mount of APP_SECRETS_DIR at /run/secrets
    becomes one secret per file of that folder, /run/secrets/<file name>, readable by
    the app's user only; each secret's name carries a digest of its file (secrets are
    immutable: a changed file is a new secret, and the app rolls onto it). A bind mount
    could not follow the tasks to other nodes. Raises SwarmError for a file name Docker
    can't use as a secret's."""
    app = model.get("services", {}).get("app", {})
    volumes = app.get("volumes") or []
    mounts = [v for v in volumes if v.get("type") == "bind" and v.get("target") == SECRETS_TARGET]
    if not mounts:
        return
    folder = Path(mounts[0]["source"])
    app["volumes"] = [v for v in volumes if v not in mounts]
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        if not SECRET_NAME.fullmatch(path.name):
            raise SwarmError(
                f"APP_SECRETS_DIR: {path.name!r} can't name a Swarm secret (letters, digits, "
                "'_', '-', '.'; at most 64)"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        key = f"app_{path.name}"
        model.setdefault("secrets", {})[key] = {
            "name": f"{stack}_{key}_{digest}",
            "file": str(path),
        }
        app.setdefault("secrets", []).append(
            {
                "source": key,
                "target": f"{SECRETS_TARGET}/{path.name}",
                "uid": APP_UID,
                "gid": APP_UID,
                "mode": 0o400,
            }
        )


def _run(*command: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run ``command`` in the repository; its stdout, or SwarmError with its stderr."""
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SwarmError(f"`{' '.join(command[:4])}` took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SwarmError(f"`{' '.join(command[:4])}` failed: {detail[-1] if detail else '?'}")
    return result.stdout


def _compose_env(stack: str, env_file: str | None) -> tuple[list[str], dict[str, str]]:
    """The `docker compose` command prefix and environment for ``stack``."""
    command = ["docker", "compose", "--project-directory", str(ROOT)]
    if env_file:
        command += ["--env-file", env_file]
    for name in COMPOSE_FILES:
        command += ["-f", name]
    # Compose names the images <project>/<service>:latest: the stack's own.
    return command, {**os.environ, "COMPOSE_PROJECT_NAME": stack}


def _dotenv(env_file: str | None) -> dict[str, str]:
    """KEY=VALUE lines of the env file compose reads (.env unless ``env_file``)."""
    path = ROOT / (env_file or ".env")
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def check_manager() -> None:
    """SwarmError unless this engine is an active swarm manager."""
    state = _run(
        "docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"
    )
    if state.split() != ["active", "true"]:
        raise SwarmError(
            "this Docker engine is not a swarm manager: run `docker swarm init` "
            "(a single-node swarm), or set DOCKER_HOST to a manager"
        )


def render(stack: str, env_file: str | None) -> dict[str, Any]:
    """The stack file for ``stack``: build images, tag them by id, merge, adapt.
    Says on stderr what Swarm can't apply (swarm_gaps)."""
    command, env = _compose_env(stack, env_file)
    cert_dir = env.get("TLS_CERT_DIR") or _dotenv(env_file).get("TLS_CERT_DIR") or "nginx/certs"
    env["TLS_VERSION"] = tls_version(ROOT / cert_dir)
    model = json.loads(_run(*command, "config", "--format", "json", env=env))
    for name, service in model["services"].items():
        pushed = pushed_image(name, os.environ)
        if pushed:  # make push's, from a registry every node can pull from
            service["image"] = pushed
            continue
        image = service["image"]
        image_id = _run("docker", "image", "inspect", "--format", "{{.Id}}", image).strip()
        versioned = f"{image.rsplit(':', 1)[0]}:{image_id.removeprefix('sha256:')[:12]}"
        _run("docker", "image", "tag", image, versioned)
        service["image"] = versioned
    app_secrets(model, stack)
    for gap in swarm_gaps(model):
        print(f"swarm: not applied in Swarm: {gap} (deploy/swarm/stack.yml)", file=sys.stderr)
    return stack_file(model)


# Images `make push` put in a registry, named by these variables (REGISTRY/app:TAG),
# replace the stack's locally built ones: what a swarm of several nodes pulls.
PUSHED_IMAGES = {"app": "APP_IMAGE", "proxy": "PROXY_IMAGE"}


def pushed_image(service: str, environ: Mapping[str, str]) -> str | None:
    """The registry image ``environ`` names for ``service`` (APP_IMAGE,
    PROXY_IMAGE), or None to use the locally built one."""
    variable = PUSHED_IMAGES.get(service)
    return (environ.get(variable) or None) if variable else None


def build(stack: str, env_file: str | None) -> None:
    """Build every image with compose, tagged <stack>/<service>:latest: as `make
    build` does, the runtime a project builds FROM first, then the app (the
    proxy takes its static files from it), then the rest."""
    command, env = _compose_env(stack, env_file)
    base = command[: command.index("-f")] + ["-f", COMPOSE_FILES[0]]  # the override resets build
    print(f"swarm: building images for {stack}", file=sys.stderr)
    for step in (["--profile", "build", "build", "runtime", "wheels"], ["build", "app"], ["build"]):
        _run(*base, *step, "--quiet", env=env, timeout=1800)


def deploy(stack: str, env_file: str | None) -> None:
    """Build, render and deploy ``stack``; return once it has converged."""
    check_manager()
    build(stack, env_file)
    before = update_states(stack)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="stack-") as handle:
        json.dump(render(stack, env_file), handle)
        handle.flush()
        print(f"swarm: docker stack deploy {stack}", file=sys.stderr)
        _run(
            "docker", "stack", "deploy", "--compose-file", handle.name,
            "--resolve-image", "never", "--prune", "--detach=true", stack,
        )  # fmt: skip
    wait_converged(stack, DEPLOY_TIMEOUT, before)
    _remove_unused_secrets(stack)


def _services(stack: str) -> list[dict[str, Any]]:
    names = _run(
        "docker", "service", "ls", "--quiet", "--filter", f"label={NAMESPACE_LABEL}={stack}"
    ).split()
    if not names:
        return []
    return json.loads(_run("docker", "service", "inspect", *names))


def _running_tasks(service_id: str) -> int:
    states = _run(
        "docker", "service", "ps", "--quiet", "--filter", "desired-state=running",
        "--format", "{{.CurrentState}}", service_id,
    ).splitlines()  # fmt: skip
    return sum(state.startswith("Running") for state in states)


def _desired_tasks(service: dict[str, Any]) -> int:
    mode = service["Spec"]["Mode"]
    if "Replicated" in mode:
        return int(mode["Replicated"].get("Replicas", 1))
    nodes = _run("docker", "node", "ls", "--format", "{{.Status}} {{.Availability}}")
    return nodes.splitlines().count("Ready Active")  # global: one task per available node


def update_states(stack: str) -> dict[str, dict[str, Any]]:
    """Each service's UpdateStatus ({} before its first update), by service name."""
    return {
        service["Spec"]["Name"]: service.get("UpdateStatus") or {} for service in _services(stack)
    }


def wait_converged(
    stack: str, timeout: float, before: dict[str, dict[str, Any]] | None = None
) -> None:
    """Wait until every service of ``stack`` runs exactly its desired tasks with no
    update in progress. A running task with a healthcheck has passed it (Swarm
    reports it running only once healthy). Raises SwarmError on timeout, or when
    an update that started after ``before`` (update_states()) was rolled back."""
    before = before or {}
    deadline = time.monotonic() + timeout
    pending: dict[str, str] = {}  # service name -> its tasks, "0/1 updating"
    while time.monotonic() < deadline:
        pending = {}
        services = _services(stack)
        for service in services:
            name = service["Spec"]["Name"]
            status = service.get("UpdateStatus") or {}
            update = status.get("State", "")
            rolled_back = update.startswith("rollback") and update != "rollback_started"
            if rolled_back and status != before.get(name):
                message = service["UpdateStatus"].get("Message", "")
                raise SwarmError(f"{name}: the update was rolled back ({update}): {message}")
            running, desired = _running_tasks(service["ID"]), _desired_tasks(service)
            if update in ("updating", "rollback_started") or running != desired:
                pending[name] = f"{running}/{desired} {update}".strip()
        if services and not pending:
            print(f"swarm: {stack} converged", file=sys.stderr)
            return
        time.sleep(2)
    why = "; ".join(f"{name} {state} ({_last_failure(name)})" for name, state in pending.items())
    raise SwarmError(
        f"{stack} did not converge within {timeout:.0f} s: {why or '(no services yet)'}"
    )


def _last_failure(service: str) -> str:
    """Why ``service``'s tasks fail, in one line: the newest error Swarm recorded
    for a task ("task: non-zero exit (2)") and the last line its tasks wrote to
    stderr (to stdout if none)."""
    errors = _run(
        "docker", "service", "ps", "--no-trunc", "--format", "{{.Error}}", service, timeout=30
    )  # fmt: skip
    # --no-trunc quotes the error: "task: non-zero exit (2)"
    quoted = [line.strip() for line in errors.splitlines() if line.strip()]
    error = quoted[0].strip('"') if quoted else "no task error"
    try:
        logs = subprocess.run(
            ["docker", "service", "logs", "--raw", "--tail", "5", service],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return error
    lines = (logs.stderr.strip() or logs.stdout.strip()).splitlines()
    return f"{error}; last log line: {lines[-1].strip()!r}" if lines else error


def _remove_unused_secrets(stack: str) -> None:
    """Remove the stack's secrets no service uses (certificates replaced earlier)."""
    used = {
        ref["SecretName"]
        for service in _services(stack)
        for ref in service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets", [])
    }
    names = _run(
        "docker", "secret", "ls", "--filter", f"label={NAMESPACE_LABEL}={stack}",
        "--format", "{{.Name}}",
    ).split()  # fmt: skip
    for name in set(names) - used:
        _run("docker", "secret", "rm", name)


def undeploy(stack: str, volumes: bool) -> None:
    """`docker stack rm`, then wait until the containers and networks are gone."""
    _run("docker", "stack", "rm", stack)
    label = f"label={NAMESPACE_LABEL}={stack}"
    deadline = time.monotonic() + REMOVE_TIMEOUT
    while time.monotonic() < deadline:
        containers = _run("docker", "ps", "--all", "--quiet", "--filter", label).split()
        networks = _run("docker", "network", "ls", "--quiet", "--filter", label).split()
        if not containers and not networks:
            break
        time.sleep(1)
    else:
        raise SwarmError(f"{stack}: containers or networks still there after {REMOVE_TIMEOUT} s")
    if volumes:
        for volume in _run("docker", "volume", "ls", "--quiet", "--filter", label).split():
            _run("docker", "volume", "rm", volume)
    print(f"swarm: {stack} removed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["deploy", "undeploy", "render"])
    parser.add_argument("stack", help="stack name (also the images' and networks' prefix)")
    parser.add_argument("--env-file", help="compose env file (default: .env)")
    parser.add_argument("--volumes", action="store_true", help="undeploy: remove volumes too")
    args = parser.parse_args(argv)
    try:
        if args.action == "deploy":
            deploy(args.stack, args.env_file)
        elif args.action == "render":
            json.dump(render(args.stack, args.env_file), sys.stdout, indent=2)
            print()
        else:
            undeploy(args.stack, args.volumes)
    except SwarmError as exc:
        print(f"swarm: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

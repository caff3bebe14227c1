"""Kubernetes manifests: schema-valid against Kubernetes 1.37 (kubernetes-validate, offline), and wired together."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_model import REPO

K8S = REPO / "deploy" / "k8s"
K8S_VERSION = "1.37.0"
CUSTOM_KINDS = {"Kustomization", "ServiceMonitor"}  # CRDs: no bundled schema, checked field by field below


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, doc) for p in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(p.read_text()) if doc]


def by_kind(kind: str, file: str | None = None) -> dict[str, Any]:
    (doc,) = [d for name, d in documents() if d["kind"] == kind and (file is None or name == file)]
    return doc


@pytest.mark.parametrize(
    ("file", "doc"), [pytest.param(f, d, id=f) for f, d in documents() if d["kind"] not in CUSTOM_KINDS]
)
def test_manifest_is_valid_for_kubernetes(file: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_only_known_custom_resources_escape_the_schema_check() -> None:
    assert {d["kind"] for _, d in documents()} & CUSTOM_KINDS == CUSTOM_KINDS


def test_schema_check_rejects_a_broken_deployment() -> None:
    """Negative control: a misspelt field and a string port fail the same validation."""
    broken = copy.deepcopy(by_kind("Deployment", "deployment.yaml"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["pathh"] = container["readinessProbe"]["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = copy.deepcopy(by_kind("Deployment", "deployment.yaml"))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_existing_files_and_every_default_manifest() -> None:
    resources = by_kind("Kustomization")["resources"]
    assert all((K8S / r).is_file() for r in resources)
    assert set(resources) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "deployment-s3.yaml"}


@pytest.mark.parametrize("file", ["deployment.yaml", "deployment-s3.yaml"])
def test_deployment_probes_ports_gpu_and_scrape_annotations(file: str) -> None:
    pod = by_kind("Deployment", file)["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8002"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_model_repository_from_volume_or_object_storage() -> None:
    pvc_claim = by_kind("PersistentVolumeClaim")["metadata"]["name"]
    pod = by_kind("Deployment", "deployment.yaml")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/models")
    assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == pvc_claim
    s3 = by_kind("Deployment", "deployment-s3.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert s3["command"] == ["tritonserver"] and any(a.startswith("--model-repository=s3://") for a in s3["args"])


def test_service_exposes_three_ports_to_the_pods() -> None:
    service = by_kind("Service")
    pod_labels = by_kind("Deployment", "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "http": (8000, "http"),
        "grpc": (8001, "grpc"),
        "metrics": (8002, "metrics"),
    }


def test_servicemonitor_scrapes_the_metrics_port() -> None:
    monitor = by_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= by_kind("Service")["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_hpa_scales_the_deployment_on_the_adapters_triton_metric() -> None:
    hpa = by_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == by_kind("Deployment", "deployment.yaml")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    rules = yaml.safe_load(by_kind("ConfigMap")["data"]["config.yaml"])["rules"]
    exposed = {r["name"]["as"] for r in rules}
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] in exposed
    assert all(r["seriesQuery"].startswith("nv_inference_") for r in rules), "must come from Triton's metrics"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_image_matches_the_compose_default() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    default = compose["x-quantserve-image"]["image"].split(":-", 1)[1].rstrip("}")
    for file in ("deployment.yaml", "deployment-s3.yaml"):
        assert by_kind("Deployment", file)["spec"]["template"]["spec"]["containers"][0]["image"] == default

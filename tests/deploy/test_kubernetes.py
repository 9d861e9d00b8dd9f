"""The Kubernetes base renders with kustomize, every object is valid against the Kubernetes
schemas (offline, kubernetes-validate), and the security settings and probes are as promised."""

from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from app.settings import Settings
from tests.conftest import REPO

KUBECTL = shutil.which("kubectl")
KUBERNETES_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    if KUBECTL is None:
        pytest.skip("needs kubectl (its built-in kustomize renders deploy/k8s)")
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / "deploy" / "k8s")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    return {d["kind"]: d for d in docs}


def test_every_object_is_valid_against_the_schemas(objects):
    assert set(objects) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for obj in objects.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_deployment_is_locked_down_and_probed_on_the_v2_routes(objects):
    deployment = objects["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    pod = deployment["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    writable = {m["mountPath"] for m in container["volumeMounts"]}
    assert writable == {"/tmp"}
    assert all("emptyDir" in v for v in pod["volumes"])
    selector = deployment["selector"]["matchLabels"]
    assert selector.items() <= deployment["template"]["metadata"]["labels"].items()
    assert selector.items() <= objects["Service"]["spec"]["selector"].items()


def test_autoscaling_and_disruption_budget(objects):
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def _selects(selector: dict, labels: dict) -> bool:
    """A non-empty equality selector whose every pair is on the pod's labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_service_and_budget_selects_the_deployments_pods(objects):
    deployment = objects["Deployment"]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], pods)
    assert _selects(objects["Service"]["spec"].get("selector", {}), pods)
    budget = objects["PodDisruptionBudget"]["spec"].get("selector", {})
    assert _selects(budget.get("matchLabels", {}), pods), "the PDB protects no pod"
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_configmap_sets_only_real_settings(objects):
    known = {name.upper() for name in Settings.model_fields}
    assert set(objects["ConfigMap"]["data"]) <= known


def test_the_kserve_example_runs_the_same_image_and_probes():
    service = yaml.safe_load((REPO / "deploy" / "kserve" / "inferenceservice.yaml").read_text())
    assert service["kind"] == "InferenceService"
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["image"].startswith("cxr-pneumonia")
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

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
def rendered() -> list[dict]:
    if KUBECTL is None:
        pytest.skip("needs kubectl (its built-in kustomize renders deploy/k8s)")
    text = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / "deploy" / "k8s")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def objects(rendered) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in rendered}


def of_kind(objects: dict, kind: str) -> list[dict]:
    return [obj for (k, _), obj in objects.items() if k == kind]


def test_every_object_is_valid_against_the_schemas(rendered, objects):
    assert len(objects) == len(rendered)  # no two objects share a kind and name
    assert set(objects) == {
        ("ConfigMap", "cxr-pneumonia-settings"),
        ("ConfigMap", "cxr-dicom-node-settings"),
        ("Deployment", "cxr-pneumonia"),
        ("Deployment", "cxr-dicom-node"),
        ("Service", "cxr-pneumonia"),
        ("Service", "cxr-dicom-node"),
        ("PersistentVolumeClaim", "cxr-dicom-spool"),
        ("HorizontalPodAutoscaler", "cxr-pneumonia"),
        ("PodDisruptionBudget", "cxr-pneumonia"),
    }
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", ["cxr-pneumonia", "cxr-dicom-node"])
def test_both_workloads_are_locked_down(objects, name):
    pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)


def test_the_api_is_probed_on_the_v2_routes(objects):
    deployment = objects[("Deployment", "cxr-pneumonia")]["spec"]
    assert deployment["replicas"] == 2
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/records"}
    database = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"] == {
        "name": "cxr-records-db",
        "key": "database-url",
        "optional": True,
    }
    assert all("emptyDir" in v for v in pod["volumes"])


def test_the_node_keeps_its_spool_on_a_volume(objects):
    deployment = objects[("Deployment", "cxr-dicom-node")]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python3", "-m", "app", "dicom-node"]
    spool = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/spool"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == spool]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in objects
    settings = objects[("ConfigMap", "cxr-dicom-node-settings")]["data"]
    assert settings["DICOM_SPOOL_DIR"] == "/spool"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["dicom"] == int(settings["DICOM_PORT"])


def test_autoscaling_and_disruption_budget(objects):
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    (budget,) = of_kind(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1


def _selects(selector: dict, labels: dict) -> bool:
    """A non-empty equality selector whose every pair is on the pod's labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_service_budget_and_autoscaler_meets_the_pods_of_one_deployment(objects):
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(objects, "Deployment")
    }
    for deployment in of_kind(objects, "Deployment"):
        own = pods[deployment["metadata"]["name"]]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], own)
    selectors = [
        (s["metadata"]["name"], s["spec"].get("selector", {})) for s in of_kind(objects, "Service")
    ]
    selectors += [
        (b["metadata"]["name"], b["spec"].get("selector", {}).get("matchLabels", {}))
        for b in of_kind(objects, "PodDisruptionBudget")
    ]
    for name, selector in selectors:
        matched = [d for d, labels in pods.items() if _selects(selector, labels)]
        assert len(matched) == 1, f"{name} selects the pods of {matched or 'no deployment'}"
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in pods


def test_the_configmaps_set_only_real_settings(objects):
    known = {name.upper() for name in Settings.model_fields}
    for config in of_kind(objects, "ConfigMap"):
        assert set(config["data"]) <= known, config["metadata"]["name"]


def test_the_kserve_example_runs_the_same_image_and_probes():
    service = yaml.safe_load((REPO / "deploy" / "kserve" / "inferenceservice.yaml").read_text())
    assert service["kind"] == "InferenceService"
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["image"].startswith("cxr-pneumonia")
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

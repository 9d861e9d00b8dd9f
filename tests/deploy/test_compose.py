"""docker-compose.yml's pacs profile: Orthanc and the node point at each other by the names,
ports and AE titles the other really has."""

from __future__ import annotations

import json

import yaml

from app.dicom_node.destinations import parse_destination
from app.settings import Settings
from tests.conftest import REPO


def _environment(service: dict) -> dict[str, str]:
    pairs = (entry.partition("=") for entry in service.get("environment", []))
    return {key: value for key, sep, value in pairs if sep}


def _default(value: str) -> str:
    """`${NAME:-default}` -> default."""
    return value.split(":-", 1)[1].rstrip("}") if value.startswith("${") else value


def test_pacs_profile_wires_orthanc_and_the_node_both_ways():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    node, orthanc = services["dicom-node"], services["orthanc"]
    assert node["profiles"] == orthanc["profiles"] == ["pacs"]
    assert node["command"] == ["python3", "-m", "app", "dicom-node"]
    config = json.loads((REPO / "deploy" / "orthanc" / "orthanc.json").read_text())
    env = _environment(node)
    destination = parse_destination(_default(env["DICOM_DESTINATION"]), "CXR_AI")
    assert destination.called_ae == config["DicomAet"] and destination.port == config["DicomPort"]
    assert destination.host in services
    ((title, host, port),) = config["DicomModalities"].values()
    assert title == _default(env["DICOM_AE_TITLE"]) and host == "dicom-node"
    assert port == Settings.model_fields["dicom_port"].default
    assert any(volume.endswith(":/spool") for volume in node["volumes"])
    lua = (REPO / "deploy" / "orthanc" / "route-to-node.lua").read_text()
    assert f"'{next(iter(config['DicomModalities']))}'" in lua

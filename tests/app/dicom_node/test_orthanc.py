"""Against a real Orthanc (Debian's package, started here on loopback): a film stored into
Orthanc is routed to the node, and the report and heatmap appear in Orthanc's study."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE

from app.dicom_node import DicomNode
from app.dicom_node.destinations import StoreScu
from app.dicom_node.orthanc import LocalOrthanc, orthanc_binary
from tests.app.dicom_node.conftest import cr_film, node_settings, send
from tests.app.dicom_node.test_node import read_report, texts

pytestmark = pytest.mark.skipif(
    orthanc_binary() is None,
    reason="Orthanc is not installed (apt-get install orthanc; .ci/run installs it)",
)


def store_into(orthanc: LocalOrthanc, film: bytes) -> None:
    ds = pydicom.dcmread(io.BytesIO(film))
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title="ORTHANC")
    assert assoc.is_established
    assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()


@pytest.fixture
def pacs(tmp_path, node_predictor):
    """Orthanc and the node, each the other's destination."""
    settings = node_settings(tmp_path)
    node = DicomNode(settings, node_predictor, destination=None).start()
    orthanc = LocalOrthanc(tmp_path / "orthanc", "CXR_AI", node.port).start()
    node.destination = StoreScu("ORTHANC", "127.0.0.1", orthanc.dicom_port, "CXR_AI")
    yield orthanc, node
    node.stop()
    orthanc.stop()


def probability_in(orthanc: LocalOrthanc, instance_id: str) -> float:
    group = read_report(pydicom.dcmread(io.BytesIO(orthanc.file(instance_id))))
    return {m.name.meaning: m.value for m in group.get_measurements()}["Probability"]


def test_film_in_orthanc_gets_report_and_heatmap_in_its_study(pacs, client):
    orthanc, _ = pacs
    film = cr_film(21)
    store_into(orthanc, film)
    uid = pydicom.dcmread(io.BytesIO(film)).StudyInstanceUID
    series = orthanc.wait_for(uid, {"CR": 1, "SR": 1, "OT": 1})
    answer = client.post(
        "/predict", params={"heatmap": "false"}, files={"file": ("film.dcm", film)}
    ).json()
    assert probability_in(orthanc, series["SR"][0]) == answer["probability"]
    assert len(orthanc.get("/studies")) == 1  # results joined the film's study, no new one
    capture = pydicom.dcmread(io.BytesIO(orthanc.file(series["OT"][0])))
    assert capture.PhotometricInterpretation == "RGB"


def test_real_adult_cr_and_a_refused_film(pacs):
    orthanc, _ = pacs
    adult = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    lateral = cr_film(22, ViewPosition="LL")
    store_into(orthanc, adult)
    store_into(orthanc, lateral)
    adult_series = orthanc.wait_for(
        pydicom.dcmread(io.BytesIO(adult)).StudyInstanceUID, {"CR": 1, "SR": 1, "OT": 1}
    )
    report = read_report(pydicom.dcmread(io.BytesIO(orthanc.file(adult_series["SR"][0]))))
    assert any("adult" in text for text in texts(report))
    lateral_series = orthanc.wait_for(
        pydicom.dcmread(io.BytesIO(lateral)).StudyInstanceUID, {"CR": 1, "SR": 1}
    )
    assert "OT" not in lateral_series  # not analysed: no heatmap
    report = read_report(pydicom.dcmread(io.BytesIO(orthanc.file(lateral_series["SR"][0]))))
    assert report.get_measurements() == []


def test_orthanc_down_then_up(pacs):
    orthanc, node = pacs
    film = cr_film(23)
    store_into(orthanc, film)
    uid = pydicom.dcmread(io.BytesIO(film)).StudyInstanceUID
    orthanc.wait_for(uid, {"CR": 1, "SR": 1, "OT": 1})
    orthanc.stop()  # the PACS goes down; a modality sends the node a film directly
    second = cr_film(24)
    assert send(node.port, [second]) == [0]
    deadline = time.monotonic() + 60
    while node.metrics.retrying._value.get() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.metrics.retrying._value.get() == 2  # its SR and SC wait in the spool
    orthanc.start()  # back, same storage
    second_uid = pydicom.dcmread(io.BytesIO(second)).StudyInstanceUID
    series = orthanc.wait_for(second_uid, {"SR": 1, "OT": 1})
    assert len(series["SR"]) == 1 and len(series["OT"]) == 1

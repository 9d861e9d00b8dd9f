"""DICOM through HTTP: scored with acquisition facts, refused with reasons, no patient data."""

from __future__ import annotations

import logging

import pytest

from tests import dicom_files as dcm
from tests.images import synthetic_film

FILM = synthetic_film(21, 420, 350)


def post(client, data: bytes, name: str = "study.dcm", **params):
    return client.post("/predict", files={"file": (name, data)}, params=params)


def _no_patient_data(text: str) -> None:
    for value in dcm.PATIENT.values():
        assert value not in text
        assert value.split("^")[0] not in text


def test_a_dicom_film_is_scored_with_its_acquisition_facts(client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = post(client, dcm.grayscale_dicom(FILM, bits_stored=12, syntax=dcm.RLELossless))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"]["format"] == "DICOM"
    assert (body["image"]["width"], body["image"]["height"]) == (350, 420)
    assert body["image"]["modality"] == "DX" and body["image"]["view_position"] == "PA"
    assert body["image"]["bits_stored"] == 12 and body["image"]["frames"] == 1
    assert body["heatmap"]  # the server draws the overlay: browsers cannot show DICOM
    _no_patient_data(response.text)
    _no_patient_data(caplog.text)


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: dcm.grayscale_dicom(FILM, ViewPosition="LATERAL"), 422),
        (lambda: dcm.without_pixels(FILM), 400),
        (lambda: dcm.grayscale_dicom(FILM)[:3000], 400),
        (lambda: dcm.claiming_size(60_000, 60_000), 413),
        (lambda: dcm.with_transfer_syntax(FILM, "1.2.840.10008.1.2.4.100"), 415),
        (lambda: dcm.grayscale_dicom(FILM)[132:], 415),
    ],
)
def test_bad_dicom_gets_its_status_and_no_patient_data(client, caplog, make, status):
    with caplog.at_level(logging.DEBUG):
        response = post(client, make())
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    if status == 422:
        assert response.json()["code"] == "not_chest_xray"
    _no_patient_data(response.text)
    _no_patient_data(caplog.text)
    assert client.get("/health").status_code == 200


def test_a_real_adult_cr_is_answered_with_a_population_warning(client, caplog):
    from pathlib import Path

    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    with caplog.at_level(logging.INFO):
        response = post(client, data, "RG1_UNCR.dcm")
    assert response.status_code == 200, response.text
    warnings = response.json()["warnings"]
    assert len(warnings) == 1 and "adult" in warnings[0] and "children aged 1 to 5" in warnings[0]
    for text in (response.text, caplog.text):
        assert "19400305" not in text and "64" not in " ".join(warnings)


def test_population_check_refuse_answers_422(shipped_bundle_dir):
    from pathlib import Path

    from pydicom.data import get_testdata_file

    from tests.app.conftest import make_client

    data = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    settings = {"population_check": "refuse", "gradcam_enabled": False}
    with make_client(model_dir=shipped_bundle_dir, **settings) as refusing:
        response = post(refusing, data, "RG1_UNCR.dcm", heatmap="false")
    assert response.status_code == 422
    assert response.json()["code"] == "outside_population"
    assert "19400305" not in response.text


def test_a_png_export_of_the_adult_cr_is_warned_from_its_pixels(client):
    """No header: the pixels alone say "adult", and the answer says how sure the check is."""
    from pathlib import Path

    import cv2
    from pydicom.data import get_testdata_file

    from imaging import PreprocessingParams, decode_upload

    dicom = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    gray = decode_upload(dicom, PreprocessingParams())[1]
    response = post(client, cv2.imencode(".png", gray)[1].tobytes(), "export.png", heatmap="false")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["population_score"] > 0.5 and len(body["warnings"]) == 1
    assert "adult" in body["warnings"][0] and "header" not in body["warnings"][0]


def test_the_shipped_sample_films_are_answered_without_a_warning(client):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "examples"
    for name, label in (("normal.png", "NORMAL"), ("pneumonia.jpg", "PNEUMONIA")):
        response = post(client, (samples / name).read_bytes(), name, heatmap="false")
        body = response.json()
        assert body["label"] == label and body["warnings"] == []
        assert 0.0 <= body["population_score"] < 0.1

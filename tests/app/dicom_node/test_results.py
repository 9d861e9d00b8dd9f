"""The result objects on their own: codes, identity, determinism, a sparse source header."""

from __future__ import annotations

import io

import numpy as np
import pydicom

from app.dicom_node.results import (
    NOT_FOR_DIAGNOSTIC_USE,
    PNEUMONIA,
    THRESHOLD,
    Finding,
    heatmap_capture,
    structured_report,
)
from tests.app.dicom_node.conftest import cr_film
from tests.app.dicom_node.test_node import read_report, texts

ANSWER = Finding(
    "cxr-pneumonia-cnn",
    "2026.12.03-test",
    probability=0.8125,
    label="PNEUMONIA",
    threshold=0.5,
    warnings=("an adult's film",),
    overlay_bgr=np.zeros((40, 30, 3), np.uint8) + np.array([255, 0, 0], np.uint8),  # blue
)


def source() -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(cr_film(51)), stop_before_pixels=True)


def test_report_codes_and_values():
    group = read_report(structured_report(source(), ANSWER))
    assert group.finding_type.value == PNEUMONIA.value
    values = {(m.name.value, m.name.scheme_designator): m.value for m in group.get_measurements()}
    assert values == {("122157", "DCM"): 0.8125, (THRESHOLD.value, "99CXRAI"): 0.5}
    assert texts(group) == ["an adult's film", NOT_FOR_DIAGNOSTIC_USE]


def test_uids_derive_from_the_source_and_the_model():
    film = source()
    first, again = structured_report(film, ANSWER), structured_report(film, ANSWER)
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SeriesInstanceUID == again.SeriesInstanceUID
    newer = Finding(**{**ANSWER.__dict__, "model_version": "2027.01.01-next"})
    assert structured_report(film, newer).SOPInstanceUID != first.SOPInstanceUID
    assert heatmap_capture(film, ANSWER).SOPInstanceUID not in (first.SOPInstanceUID,)


def test_a_source_without_patient_or_study_details_still_gets_results():
    film = source()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime"):
        if keyword in film:
            delattr(film, keyword)
    report = structured_report(film, ANSWER)
    assert report.StudyInstanceUID == film.StudyInstanceUID and report.PatientID in ("", None)
    assert "PatientID" not in film  # the source itself is left as it was


def test_heatmap_capture_is_rgb_from_the_engines_bgr():
    capture = heatmap_capture(source(), ANSWER)
    assert capture.PhotometricInterpretation == "RGB" and capture.SamplesPerPixel == 3
    assert tuple(capture.pixel_array[0, 0]) == (0, 0, 255)  # blue stays blue
    assert capture.SeriesDate and capture.ImageComments == NOT_FOR_DIAGNOSTIC_USE

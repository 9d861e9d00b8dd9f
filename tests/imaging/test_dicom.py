"""DICOM in the one preprocessing module: every storage of a film shows the film, every refusal has
its reason, and no error carries patient data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imaging import (
    CorruptImageError,
    ImageTooLargeError,
    NotChestXrayError,
    PreprocessingParams,
    UnsupportedImageError,
    decode_upload,
    is_image_file,
    preprocess_bytes,
    probe_image,
)
from tests import dicom_files as dcm
from tests.images import png_bytes, synthetic_film

FILM = synthetic_film(11, 360, 300)
PARAMS = PreprocessingParams()

LOSSLESS = {
    "8-bit": lambda g: dcm.grayscale_dicom(g),
    "12-bit in 16": lambda g: dcm.grayscale_dicom(g, bits_stored=12),
    "16-bit": lambda g: dcm.grayscale_dicom(g, bits_stored=16),
    "signed 12-bit": lambda g: dcm.grayscale_dicom(g, bits_stored=12, signed=True),
    "MONOCHROME1": lambda g: dcm.grayscale_dicom(g, bits_stored=12, monochrome1=True),
    "rescale slope and intercept": lambda g: dcm.grayscale_dicom(
        g, bits_stored=12, slope=2.0, intercept=-1024.0
    ),
    "full-range window": lambda g: dcm.grayscale_dicom(g, bits_stored=14, window=True),
    "narrow window over wide values": dcm.windowed_dicom,
    "VOI LUT sequence": dcm.voi_lut_dicom,
    "RGB": dcm.rgb_dicom,
    "multi-frame (first frame read)": lambda g: dcm.grayscale_dicom(g, bits_stored=12, frames=3),
    **{
        name: (lambda g, uid=uid: dcm.grayscale_dicom(g, bits_stored=12, syntax=uid))
        for name, uid in dcm.COMPRESSED_SYNTAXES.items()
        if "lossy" not in name
    },
}


@pytest.mark.parametrize("case", list(LOSSLESS))
def test_lossless_storage_shows_exactly_the_film(case):
    data = LOSSLESS[case](FILM)
    header, gray = decode_upload(data, PARAMS)
    assert header.format == "DICOM" and (header.width, header.height) == (300, 360)
    assert gray.dtype == np.uint8 and gray.shape == FILM.shape
    assert np.abs(gray.astype(int) - FILM.astype(int)).max() <= 1, case
    assert np.array_equal(preprocess_bytes(data, PARAMS), preprocess_bytes(png_bytes(FILM), PARAMS))


@pytest.mark.parametrize("quality", [95, 80])
def test_jpeg_baseline_in_dicom_reads_like_the_jpeg_itself(quality):
    data, jpeg = dcm.jpeg_dicom(FILM, quality)
    from_dicom, from_jpeg = preprocess_bytes(data, PARAMS), preprocess_bytes(jpeg, PARAMS)
    assert np.abs(from_dicom - from_jpeg).mean() < 0.002


def test_lossy_jpeg_2000_stays_close_to_the_film():
    data = dcm.grayscale_dicom(FILM, bits_stored=12, syntax=dcm.JPEG2000)
    _, gray = decode_upload(data, PARAMS)
    assert np.abs(gray.astype(int) - FILM.astype(int)).mean() < 2.0


def test_acquisition_facts_without_patient_data():
    header = probe_image(dcm.grayscale_dicom(FILM, bits_stored=12, syntax=dcm.JPEG2000Lossless))
    facts = header.dicom.as_dict()
    assert facts["modality"] == "DX" and facts["view_position"] == "PA"
    assert facts["bits_stored"] == 12 and facts["photometric_interpretation"] == "MONOCHROME2"
    assert "JPEG 2000" in facts["transfer_syntax"] and facts["frames"] == 1
    assert not any(value in repr(facts) for value in dcm.PATIENT.values())


def _refusal(data: bytes, max_pixels: int | None = None) -> Exception:
    with pytest.raises(Exception) as caught:
        decode_upload(data, PARAMS, max_pixels)
    message = str(caught.value)
    assert "\n" not in message
    assert not any(value in message for value in dcm.PATIENT.values()), message
    return caught.value


REFUSALS = {
    "lateral view": (lambda: dcm.grayscale_dicom(FILM, ViewPosition="LL"), NotChestXrayError),
    "another body part": (
        lambda: dcm.grayscale_dicom(FILM, BodyPartExamined="KNEE"),
        NotChestXrayError,
    ),
    "a CT slice": (lambda: dcm.grayscale_dicom(FILM, Modality="CT"), NotChestXrayError),
    "no pixel data": (lambda: dcm.without_pixels(FILM), CorruptImageError),
    "truncated": (lambda: dcm.grayscale_dicom(FILM)[:2000], CorruptImageError),
    "garbage after the header": (
        lambda: dcm.grayscale_dicom(FILM)[:300] + b"\xff\x13" * 500,
        CorruptImageError,
    ),
    "a syntax nothing decodes (MPEG2)": (
        lambda: dcm.with_transfer_syntax(FILM, "1.2.840.10008.1.2.4.100"),
        UnsupportedImageError,
    ),
    "no Part 10 preamble": (lambda: dcm.grayscale_dicom(FILM)[132:], UnsupportedImageError),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals(case):
    make, kind = REFUSALS[case]
    assert isinstance(_refusal(make()), kind)


def test_pixel_limit_is_checked_from_the_header():
    error = _refusal(dcm.claiming_size(60_000, 60_000), max_pixels=50_000_000)
    assert isinstance(error, ImageTooLargeError) and "60000x60000" in str(error)


def test_refusals_name_the_syntax():
    error = _refusal(dcm.with_transfer_syntax(FILM, "1.2.840.10008.1.2.4.100"))
    assert "MPEG2" in str(error)


def test_folder_scans_pick_up_dicom_with_or_without_a_suffix(tmp_path):
    (tmp_path / "a.dcm").write_bytes(dcm.grayscale_dicom(FILM))
    (tmp_path / "IM000123").write_bytes(dcm.grayscale_dicom(FILM))
    (tmp_path / "README").write_text("not an image")
    (tmp_path / "b.txt").write_text("not an image")
    picked = sorted(p.name for p in tmp_path.iterdir() if is_image_file(p))
    assert picked == ["IM000123", "a.dcm"]


AGES = {
    "PatientAge in years": ({"PatientAge": "064Y"}, 64.0),
    "PatientAge in months": ({"PatientAge": "030M"}, 2.5),
    "PatientAge in weeks": ({"PatientAge": "052W"}, 52 * 7 / 365.25),
    "birth date and study date": ({"StudyDate": "20230214"}, 43.0),
    "birth date and acquisition date": ({"AcquisitionDate": "19830214"}, 3.0),
    "no exam date": ({}, None),
    "nonsense age": ({"PatientAge": "old"}, None),
    "exam before birth": ({"StudyDate": "19700101"}, None),
}


@pytest.mark.parametrize("case", list(AGES))
def test_patient_age_is_read_for_the_population_check_but_never_shown(case):
    header, expected = AGES[case]
    facts = probe_image(dcm.grayscale_dicom(FILM, **header)).dicom
    if expected is None:
        assert facts.age_years is None
    else:
        assert facts.age_years == pytest.approx(expected, abs=0.01)
    assert "age" not in repr(facts) and "age_years" not in facts.as_dict()


def test_a_real_adult_cr_reads_as_64_years_old():
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    assert probe_image(data).dicom.age_years == pytest.approx(64.5, abs=0.5)

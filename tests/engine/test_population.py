"""The population check: an age outside the card's population warns (or refuses), an age inside
it or no age at all passes, and no sentence repeats the exact age or a date."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.card import Population
from engine.population import OutsidePopulationError, age_group, population_warning

CHILDREN = Population(description="children aged 1 to 5", min_age_years=1, max_age_years=5)


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (64.0, "adult"),
        (18.0, "adult"),
        (12.0, "older child"),
        (6.0, "older child"),
        (5.9, None),
        (1.0, None),
        (0.5, "infant"),
    ],
)
def test_age_groups(age, group):
    found = age_group(age, CHILDREN)
    assert (found is None) if group is None else (group in found)


def test_no_age_or_no_population_means_no_warning():
    assert population_warning(None, CHILDREN) is None
    assert population_warning(40.0, None) is None


def test_the_sentence_names_the_group_not_the_age():
    sentence = population_warning(64.4, CHILDREN)
    assert "adult" in sentence and "children aged 1 to 5" in sentence
    assert "64" not in sentence


def _predictor_with_population(shipped_bundle_dir, check):
    from engine import ModelBundle, Predictor

    bundle = ModelBundle.load(shipped_bundle_dir)
    card = bundle.card.model_copy(update={"population": CHILDREN})
    bundle = dataclasses.replace(bundle, card=card)
    return Predictor(bundle, load_gradcam=False, population_check=check)


@pytest.fixture(scope="module")
def adult_cr() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()


def test_a_real_adult_cr_is_warned_refused_or_let_through(shipped_bundle_dir, adult_cr):
    warned = _predictor_with_population(shipped_bundle_dir, "warn").predict(adult_cr, False)
    assert len(warned.warnings) == 1 and "adult" in warned.warnings[0]
    off = _predictor_with_population(shipped_bundle_dir, "off").predict(adult_cr, False)
    assert off.warnings == () and off.probability == warned.probability
    with pytest.raises(OutsidePopulationError) as caught:
        _predictor_with_population(shipped_bundle_dir, "refuse").predict(adult_cr, False)
    assert caught.value.code == "outside_population" and "19400305" not in str(caught.value)


def test_a_film_without_an_age_gets_no_warning(shipped_bundle_dir, synthetic_xray):
    result = _predictor_with_population(shipped_bundle_dir, "warn").predict(synthetic_xray, False)
    assert result.warnings == ()


def test_pixels_alone_name_an_adult_without_an_age():
    sentence = population_warning(None, CHILDREN, pixels_adult=True, score=0.93)
    assert "adult" in sentence and "0.93" in sentence and "header" not in sentence
    assert population_warning(None, CHILDREN, pixels_adult=False, score=0.01) is None


def test_header_and_pixels_disagreeing_say_both():
    header_adult = population_warning(64.0, CHILDREN, pixels_adult=False, score=0.02)
    assert "DICOM header" in header_adult and "do not look like an adult" in header_adult
    header_child = population_warning(3.0, CHILDREN, pixels_adult=True, score=0.9)
    assert "pixels look like an adult" in header_child and "within the model's population" in (
        header_child
    )
    agreeing = population_warning(64.0, CHILDREN, pixels_adult=True, score=0.9)
    assert "DICOM header" in agreeing and "pixels" not in agreeing


def _shipped(shipped_bundle_dir, check):
    from engine import Predictor

    return Predictor.from_directory(
        shipped_bundle_dir, gradcam_enabled=False, population_check=check
    )


def _png_export(dicom: bytes, predictor) -> bytes:
    import cv2

    from imaging import decode_upload

    gray = decode_upload(dicom, predictor.bundle.preprocessing)[1]
    return cv2.imencode(".png", gray)[1].tobytes()


def test_the_shipped_check_flags_an_adult_cr_from_its_pixels_alone(shipped_bundle_dir, adult_cr):
    """RG1_UNCR (a 64-year-old's PA chest CR) exported as a PNG: no header, only pixels."""
    predictor = _shipped(shipped_bundle_dir, "warn")
    assert predictor.pixel_check is not None
    result = predictor.predict(_png_export(adult_cr, predictor), heatmap=False)
    assert result.population_score >= predictor.pixel_check.threshold
    assert len(result.warnings) == 1 and "adult" in result.warnings[0]
    with pytest.raises(OutsidePopulationError):
        _shipped(shipped_bundle_dir, "refuse").predict(_png_export(adult_cr, predictor), False)


def test_the_shipped_check_leaves_the_sample_children_alone(shipped_bundle_dir):
    repo = Path(__file__).resolve().parents[2]
    warn, off = _shipped(shipped_bundle_dir, "warn"), _shipped(shipped_bundle_dir, "off")
    for name in ("normal.png", "pneumonia.jpg"):
        data = (repo / "examples" / name).read_bytes()
        checked, unchecked = warn.predict(data, False), off.predict(data, False)
        assert (
            checked.warnings == () and checked.population_score < 0.5 * warn.pixel_check.threshold
        )
        assert checked.probability == unchecked.probability and unchecked.population_score is None

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

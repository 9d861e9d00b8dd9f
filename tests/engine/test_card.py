"""The typed model card: round trip, one-line errors, the upgrade of first-round cards."""

from __future__ import annotations

import json

import pytest

from engine import CardError, ModelCard
from engine.card import CARD_FILE
from imaging import PreprocessingParams


@pytest.fixture
def card_dict(shipped_bundle_dir) -> dict:
    return json.loads((shipped_bundle_dir / CARD_FILE).read_text())


def test_round_trip_is_lossless(card_dict, tmp_path):
    card = ModelCard.from_dict(card_dict)
    card.write(tmp_path)
    assert ModelCard.read(tmp_path) == card
    assert json.loads((tmp_path / CARD_FILE).read_text()) == card_dict


def test_card_carries_labels_preprocessing_and_gradcam_layers(card_dict):
    card = ModelCard.from_dict(card_dict)
    assert card.labels == ("NORMAL", "PNEUMONIA")
    assert isinstance(card.preprocessing, PreprocessingParams)
    assert card.gradcam.members[0].feature_layers


def test_card_is_frozen(card_dict):
    card = ModelCard.from_dict(card_dict)
    with pytest.raises(ValueError):
        card.version = "x"  # type: ignore[misc]
    assert card.model_copy(update={"version": "x"}).version == "x"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.pop("labels"), "'labels': Field required"),
        (lambda c: c["threshold"].update(value=3), "'threshold.value'"),
        (lambda c: c["preprocessing"].update(sharpen=True), "unknown preprocessing"),
        (lambda c: c.update(schema_version=7), "schema version 7"),
        (lambda c: c.update(surprise=1), "'surprise': Extra inputs are not permitted"),
    ],
)
def test_a_card_it_cannot_read_fails_with_one_line(card_dict, change, reason):
    change(card_dict)
    with pytest.raises(CardError) as caught:
        ModelCard.from_dict(card_dict)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_first_round_cards_are_upgraded(card_dict):
    v1 = {k: v for k, v in card_dict.items() if k not in ("schema_version", "outputs", "gradcam")}
    v1["output"] = {"name": "probability", "meaning": "P(PNEUMONIA)"}
    v1["gradcam_layer"] = "block5_relu"
    card = ModelCard.from_dict(v1)
    assert card.outputs[0].name == "probability"
    assert card.gradcam.members[0].feature_layers == ("block5_relu",)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(CardError, match=r"no model_card\.json"):
        ModelCard.read(tmp_path)
    (tmp_path / CARD_FILE).write_text("{ not json")
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.read(tmp_path)

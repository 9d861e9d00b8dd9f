"""The out-of-distribution guard through HTTP, on a bundle trained on synthetic films (so its
guard knows them): films in, everything else refused with 422 not_chest_xray; OOD_GUARD=false
answers instead and says so; the raw heatmap grid in every answer with a heatmap."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nonxray import not_chest_xrays
from engine import ModelCard
from tests.app.conftest import make_client
from tests.images import jpeg_bytes, synthetic_film

NOT_FILMS = not_chest_xrays()


@pytest.fixture(scope="module")
def guarded(synthetic_bundle):
    with make_client(model_dir=synthetic_bundle) as client:
        yield client


def post(client, data: bytes, **params):
    return client.post("/predict", files={"file": ("upload", data)}, params=params)


@pytest.mark.slow
def test_a_film_like_the_training_films_is_answered_with_its_grid(guarded, synthetic_bundle):
    card = ModelCard.read(synthetic_bundle)
    film = jpeg_bytes(synthetic_film(1234, 1200, 1000, pneumonia=True))
    body = post(guarded, film).json()
    assert body["in_distribution"] is True
    assert 0 <= body["ood_score"] <= card.ood.threshold
    grid = np.array(body["heatmap_grid"])
    assert grid.shape == card.gradcam.grid
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    assert body["heatmap_empty"] or grid.max() == 1.0  # normalised to its peak
    plain = post(guarded, film, heatmap="false").json()
    assert plain["heatmap_grid"] is None and plain["heatmap"] is None


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NOT_FILMS))
def test_what_is_not_a_chest_film_is_refused(guarded, name):
    kind, data = NOT_FILMS[name]
    response = post(guarded, data)
    assert response.status_code == 422, (name, kind, response.text)
    body = response.json()
    assert body["code"] == "not_chest_xray" and isinstance(body["detail"], str)
    assert isinstance(body["ood_score"], float)


@pytest.mark.slow
def test_with_the_guard_off_the_answer_says_out_of_distribution(synthetic_bundle):
    with make_client(model_dir=synthetic_bundle, ood_guard=False) as client:
        body = post(client, NOT_FILMS["skimage astronaut"][1], heatmap="false").json()
        assert body["in_distribution"] is False
        assert body["ood_score"] > ModelCard.read(synthetic_bundle).ood.threshold
        assert body["label"] in ("NORMAL", "PNEUMONIA")


def test_openapi_documents_the_grid_and_the_refusal(client):
    spec = client.get("/openapi.json").json()
    response = spec["components"]["schemas"]["PredictionResponse"]["properties"]
    assert {"heatmap_grid", "in_distribution", "ood_score"} <= set(response)
    assert response["heatmap_grid"]["examples"][0][1][1] == 1.0
    refusal = spec["paths"]["/predict"]["post"]["responses"]["422"]["content"]["application/json"]
    assert refusal["examples"]["not_chest_xray"]["value"]["code"] == "not_chest_xray"

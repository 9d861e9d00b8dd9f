"""The shipped model's out-of-distribution guard: what is not a chest film is refused (the offline
set, no data needed); real films, their uploads and negatives (development data) as promised."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nonxray import negative, not_chest_xrays, turned
from engine import Predictor
from imaging import NotChestXrayError
from training.upload_simulation import simulate_upload

NOT_FILMS = not_chest_xrays()


@pytest.fixture(scope="module")
def predictor(shipped_bundle_dir) -> Predictor:
    return Predictor.from_directory(shipped_bundle_dir, gradcam_enabled=False)


@pytest.mark.parametrize("name", list(NOT_FILMS))
def test_the_shipped_guard_refuses_what_is_not_a_chest_film(predictor, name):
    kind, data = NOT_FILMS[name]
    with pytest.raises(NotChestXrayError) as refused:
        predictor.predict(data, heatmap=False)
    assert refused.value.ood_score is not None, kind


@pytest.mark.devdata
def test_real_films_and_their_uploads_are_accepted(predictor, sample_files):
    rng = np.random.default_rng(0)
    for path in sample_files:
        data = path.read_bytes()
        for upload in (data, *(simulate_upload(data, rng) for _ in range(3))):
            result = predictor.predict(upload, heatmap=False)
            assert result.in_distribution, path.name


@pytest.mark.devdata
def test_negatives_are_refused_and_turned_films_refused_or_unchanged(predictor, kaggle_dir):
    films = sorted((kaggle_dir / "test" / "PNEUMONIA").iterdir())[:20]
    films += sorted((kaggle_dir / "test" / "NORMAL").iterdir())[:20]
    for path in films:
        data = path.read_bytes()
        with pytest.raises(NotChestXrayError):
            predictor.predict(negative(data), heatmap=False)
        try:
            upright = predictor.predict(data, heatmap=False)  # (the evaluation counts refusals)
            sideways = predictor.predict(turned(data), heatmap=False)
        except NotChestXrayError:
            continue
        assert sideways.label == upright.label, path.name

"""The population check's fitting: it separates what it is shown, it cannot use the children's
disease direction, its threshold flags none of the validation children, and the command writes a
bundle the engine serves with the check."""

from __future__ import annotations

import numpy as np
import pytest

from training.population_check import (
    disease_direction,
    fit_probe,
    heavy_variant,
    threshold_for,
)


def _features(rng, n, shift):
    return rng.normal(0, 1, (n, 40)) + shift


def test_the_probe_separates_adults_and_ignores_the_disease_direction():
    rng = np.random.default_rng(0)
    disease = np.zeros(40)
    disease[0] = 3.0
    age = np.zeros(40)
    age[1] = 6.0
    labels = rng.integers(0, 2, 400)
    children = _features(rng, 400, 0) + np.outer(labels, disease)
    adults = _features(rng, 60, age)  # healthy adults only: no disease shift
    probe = fit_probe(children, labels, adults, c=1.0)
    threshold = threshold_for(probe.scores(children))
    assert (probe.scores(children) >= threshold).mean() == 0.0
    assert (probe.scores(_features(rng, 200, age)) >= threshold).mean() > 0.9
    # a sick adult is as adult as a healthy one: the disease direction carries no weight
    sick_adults = _features(rng, 200, age + disease)
    assert (probe.scores(sick_adults) >= threshold).mean() > 0.9
    scale = np.concatenate([children, adults]).std(axis=0) + 1e-6
    direction = disease_direction((children - children.mean(0)) / scale, labels)
    assert abs((probe.weights * scale) @ direction) < 1e-6 * np.linalg.norm(probe.weights * scale)


def test_a_heavy_variant_is_a_film_the_chain_reads(synthetic_xray):
    from imaging import PreprocessingParams, preprocess_bytes

    rng = np.random.default_rng(1)
    variants = {heavy_variant(synthetic_xray, rng) for _ in range(4)}
    assert len(variants) == 4
    for data in variants:
        assert preprocess_bytes(data, PreprocessingParams()).shape == (150, 150, 1)


@pytest.mark.slow
def test_the_command_writes_a_check_the_engine_serves(synthetic_bundle, small_kaggle, tmp_path):
    """Fitted on the synthetic children against 'adults' drawn with other anatomy (a wider
    chest, no cardiac shadow): the card records it, the loader checks its file, answers carry
    the score."""
    import shutil

    import cv2

    from engine import ModelBundle, Predictor
    from tests.images import png_bytes, synthetic_film
    from training.__main__ import main

    bundle = tmp_path / "bundle"
    shutil.copytree(synthetic_bundle, bundle)
    adults = tmp_path / "adults"
    adults.mkdir()
    for i in range(12):
        film = synthetic_film(100 + i, pneumonia=False)
        wide = cv2.resize(film[:, 20:-20], film.shape[::-1])  # another build: wider lungs
        (adults / f"adult{i}.png").write_bytes(png_bytes(255 - (255 - wide) // 2))
    main(["population-check", "--model", str(bundle), "--data-dir", str(small_kaggle),
          "--adults", str(adults)])  # fmt: skip
    loaded = ModelBundle.load(bundle)
    check = loaded.card.population.check
    assert check.file in loaded.card.sha256 and 0 < check.threshold < 1
    assert check.rates["validation_children_flagged"] == 0.0
    assert check.rates["adult_films"] == 12
    predictor = Predictor(loaded, load_gradcam=False, refuse_out_of_distribution=False)
    result = predictor.predict(png_bytes(synthetic_film(3, pneumonia=True)), heatmap=False)
    assert result.population_score is not None and 0.0 <= result.population_score <= 1.0

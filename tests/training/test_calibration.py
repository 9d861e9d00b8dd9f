"""Platt scaling recovers a known miscalibration; ECE and Brier measure what they claim."""

from __future__ import annotations

import numpy as np

from training.calibration import (
    brier_score,
    calibration_gain,
    expected_calibration_error,
    fit_platt,
    platt_targets,
    reliability,
    sigmoid,
)


def test_platt_recovers_slope_and_bias():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 20_000)
    labels = rng.random(logits.size) < sigmoid(0.5 * logits - 1.0)  # true P
    slope, bias = fit_platt(logits, labels)
    assert abs(slope - 0.5) < 0.03 and abs(bias + 1.0) < 0.06


def test_ece_is_small_when_calibrated_and_large_when_biased():
    rng = np.random.default_rng(1)
    probs = rng.random(50_000)
    labels = rng.random(probs.size) < probs
    assert expected_calibration_error(probs, labels) < 0.01
    assert expected_calibration_error(np.clip(probs + 0.2, 0, 1), labels) > 0.15
    assert brier_score(probs, labels) < brier_score(np.clip(probs + 0.2, 0, 1), labels)


def test_reliability_bins_cover_every_prediction():
    probs = np.array([0.05, 0.15, 0.16, 0.95])
    rows = reliability(probs, np.array([0, 0, 1, 1]))
    assert sum(r["count"] for r in rows) == 4 and rows[1]["observed_rate"] == 0.5


def test_a_separable_set_gives_a_finite_sane_slope():
    """An unregularised fit on logits that separate the classes runs off to a slope of
    thousands (1062 was measured); Platt's prior-corrected targets keep it finite."""
    logits = np.concatenate([np.linspace(-4, -1, 20), np.linspace(1, 4, 20)])
    labels = np.r_[np.zeros(20), np.ones(20)]
    slope, bias = fit_platt(logits, labels)
    assert 0.5 < slope < 5 and abs(bias) < 0.5
    probabilities = sigmoid(slope * logits + bias)
    assert probabilities.max() < 0.999 and probabilities.min() > 0.001


def test_platt_targets_are_prior_corrected():
    targets = platt_targets(np.array([1, 1, 1, 0]))
    assert np.allclose(targets, [4 / 5, 4 / 5, 4 / 5, 1 / 3])


def test_the_parity_scale_allows_only_what_the_slope_magnifies():
    """At p = 0.5 a slope of 1062 magnifies a mean-logit rounding of 2.3e-7 into 6.2e-5 of
    probability: within the bound once scaled. The same difference at slope 1 is not."""
    gain_steep = calibration_gain(np.array([0.5]), 1062.0)[0]
    gain_flat = calibration_gain(np.array([0.5]), 1.0)[0]
    assert 6.2e-5 / gain_steep < 1e-5 < 6.2e-5 / gain_flat
    assert calibration_gain(np.array([1e-7, 1 - 1e-7]), 1062.0).tolist() == [1.0, 1.0]

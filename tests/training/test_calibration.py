"""Platt scaling recovers a known miscalibration; ECE and Brier measure what they claim."""

from __future__ import annotations

import numpy as np

from training.calibration import (
    brier_score,
    expected_calibration_error,
    fit_platt,
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

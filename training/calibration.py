"""Calibration: Platt scaling fitted on validation logits, and how calibrated a probability is.

The shipped model's miscalibration was a bias toward pneumonia, which temperature (a slope alone)
cannot remove; Platt scaling fits a slope and a bias: P = sigmoid(slope * logit + bias).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from engine.figures import expected_calibration_error

__all__ = [
    "brier_score",
    "calibration_gain",
    "expected_calibration_error",
    "fit_platt",
    "platt_targets",
    "reliability",
    "sigmoid",
]


def platt_targets(labels: np.ndarray) -> np.ndarray:
    """Platt's (1999) prior-corrected targets: (N+ + 1) / (N+ + 2) for a positive, 1 / (N- + 2)
    for a negative. A plain 0/1 fit on a set the logits separate has no maximum (the slope runs
    off to infinity: 1062 was measured on a small separable set); these targets keep it finite
    and tend to 0/1 as the set grows."""
    labels = np.asarray(labels).astype(int)
    positives, negatives = int(labels.sum()), int((1 - labels).sum())
    return np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(slope, bias) maximising the likelihood of Platt's prior-corrected targets given `logits`
    (each film counted as a positive with weight t and a negative with weight 1 - t)."""
    x = np.asarray(logits, np.float64).reshape(-1, 1)
    targets = platt_targets(labels)
    model = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    model.fit(
        np.concatenate([x, x]),
        np.concatenate([np.ones(len(x), int), np.zeros(len(x), int)]),
        sample_weight=np.concatenate([targets, 1.0 - targets]),
    )
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def calibration_gain(probabilities: np.ndarray, slope: float) -> np.ndarray:
    """How much the calibration magnifies a change of the mean logit at each probability
    (dp/dz = slope * p * (1 - p)), at least 1: the export's parity bound scales by it per film,
    so float32 rounding magnified by a steep slope does not fail a bundle that is right."""
    p = np.asarray(probabilities, np.float64).reshape(-1)
    return np.maximum(1.0, abs(slope) * p * (1.0 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict]:
    """Per bin: mean probability, observed rate, count (what the reliability diagram draws)."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels, np.float64)
    index = np.minimum((probs * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        if members.any():
            rows.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "mean_probability": float(probs[members].mean()),
                    "observed_rate": float(labels[members].mean()),
                    "count": int(members.sum()),
                }
            )
    return rows


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(probs, np.float64) - np.asarray(labels, np.float64)) ** 2))

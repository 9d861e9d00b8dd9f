"""Calibration: Platt scaling fitted on validation logits, and how calibrated a probability is.

The shipped model's miscalibration was a bias toward pneumonia, which temperature (a slope alone)
cannot remove; Platt scaling fits a slope and a bias: P = sigmoid(slope * logit + bias).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(slope, bias) maximising the likelihood of `labels` given `logits` (no regularisation)."""
    model = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    model.fit(np.asarray(logits, np.float64).reshape(-1, 1), np.asarray(labels).astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels, np.float64)
    index = np.minimum((probs * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(labels[members].mean() - probs[members].mean())
    return float(error)


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

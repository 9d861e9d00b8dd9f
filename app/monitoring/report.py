"""GET /monitoring's answer: the window's drift, rates, estimated accuracy and realised figures."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.monitoring.drift import drift_report
from engine.card import ModelCard
from engine.figures import expected_calibration_error, roc_auc, wilson_interval
from engine.records import RecordStore
from engine.records.reference import MonitoringReference

BOOTSTRAP = 500
HISTORY_STEPS = 8  # earlier windows, each half a window further back, for the score over time


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def estimated_accuracy(records: list[dict[str, Any]], positive_label: str) -> float | None:
    """Accuracy expected from calibrated probabilities (no labels): an answer PNEUMONIA at p is
    right with probability p, an answer NORMAL with 1 - p (confidence-based estimation)."""
    confidences = [
        r["probability"] if r["label"] == positive_label else 1.0 - r["probability"]
        for r in records
    ]
    return float(np.mean(confidences)) if confidences else None


def _bootstrap(
    labels: np.ndarray, probabilities: np.ndarray, statistic, seed: int = 0
) -> list[float | None]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(labels), len(labels))
        value = statistic(labels[pick], probabilities[pick])
        if not math.isnan(value):
            values.append(value)
    if len(values) < BOOTSTRAP // 2:
        return [None, None]
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def realised(labelled: list[dict[str, Any]], positive_label: str) -> dict[str, Any]:
    """Figures of the answers that have a reader's verdict, with 95% intervals (Wilson for the
    proportions, bootstrap for ROC AUC and ECE)."""
    labels = np.asarray([r["verdict"] == positive_label for r in labelled], bool)
    predicted = np.asarray([r["label"] == positive_label for r in labelled], bool)
    probabilities = np.asarray([r["probability"] for r in labelled], np.float64)
    n = len(labels)
    correct = int((labels == predicted).sum())
    tp, tn = int((labels & predicted).sum()), int((~labels & ~predicted).sum())
    positives, negatives = int(labels.sum()), int((~labels).sum())

    def proportion(hits: int, of: int) -> dict[str, Any]:
        return {
            "value": hits / of if of else None,
            "ci95": [_finite(v) for v in wilson_interval(hits, of)],
            "n": of,
        }

    return {
        "n": n,
        "accuracy": proportion(correct, n),
        "sensitivity": proportion(tp, positives),
        "specificity": proportion(tn, negatives),
        "auc": {
            "value": _finite(roc_auc(labels, probabilities)),
            "ci95": _bootstrap(labels, probabilities, roc_auc),
        },
        "ece": {
            "value": expected_calibration_error(probabilities, labels) if n else None,
            "ci95": _bootstrap(labels, probabilities, expected_calibration_error) if n else None,
        },
    }


def card_figures(card: ModelCard) -> dict[str, Any]:
    """The card's own figures on its test split, to read the realised ones against."""
    test = (card.metrics or {}).get("dev_test") or {}
    at_threshold = test.get("at_bundle_threshold") or {}
    figures = {
        key: at_threshold[key]
        for key in ("n", "accuracy", "sensitivity", "specificity", "roc_auc")
        if key in at_threshold
    }
    if "ece_10_bins" in (test.get("calibration") or {}):
        figures["ece"] = test["calibration"]["ece_10_bins"]
    if figures:
        figures["data"] = test.get("data", "")
    return figures


def monitoring_report(
    store: RecordStore,
    card: ModelCard,
    reference: MonitoringReference | None,
    window: int,
) -> dict[str, Any]:
    positive = card.labels[1]
    records = store.latest(2 * window + HISTORY_STEPS * max(1, window // 2))
    current = records[-window:]
    before = records[-2 * window : -window]
    answered = [r for r in current if r["refusal_code"] is None and r["probability"] is not None]
    drift = drift_report(current, reference, positive, before if len(before) == window else None)
    count = len(current)
    rates = {
        "answers": count,
        "answered": len(answered),
        "positive": (sum(r["label"] == positive for r in answered) / len(answered))
        if answered
        else None,
        "refused": (count - len(answered)) / count if count else None,
        "warned": (sum(bool(r["warnings"]) for r in answered) / len(answered))
        if answered
        else None,
    }
    history = []
    for step in range(HISTORY_STEPS, 0, -1):
        end = len(records) - step * max(1, window // 2)
        if end - window < 0:
            continue
        earlier = drift_report(records[end - window : end], reference, positive)
        if earlier.get("score") is not None:
            history.append(
                {"last": records[end - 1]["created_at"].isoformat(), "score": earlier["score"]}
            )
    if drift.get("score") is not None and current:
        history.append({"last": current[-1]["created_at"].isoformat(), "score": drift["score"]})
    drift["history"] = history
    ids = [r["request_id"] for r in answered]
    labelled = store.labelled(ids) if ids else []
    return {
        "model_version": card.version,
        "window": window,
        "first": current[0]["created_at"].isoformat() if current else None,
        "last": current[-1]["created_at"].isoformat() if current else None,
        "drift": drift,
        "rates": rates,
        "estimated_accuracy": estimated_accuracy(answered, positive),
        "realised": realised(labelled, positive) if labelled else None,
        "card": card_figures(card),
    }

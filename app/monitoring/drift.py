"""Is the window of answers drawn from what the model was validated on?

Each signal of the window (the probability, the guard's and the population check's scores, five
gray-level statistics, eight principal components of the pooled features) is compared with the
bundle's reference by a two-sample Kolmogorov-Smirnov test. A change of case mix alone (more or
fewer pneumonia films) must not look like drift, and every signal differs between the classes,
so the reference is **re-weighted to the window's mix**: its films answered PNEUMONIA weigh
pi_window / pi_reference, the others (1 - pi_window) / (1 - pi_reference), where pi is the share
answered PNEUMONIA. The mix itself is reported as the positive rate.

The header facts (modality, manufacturer, view, photometric interpretation, bits stored, age band)
have no reference (the validation films are JPEGs): the window is compared with the window before
it by a chi-square test, which sees a new machine or a new kind of film arrive.

The tests are combined by Bonferroni: score = -log10(min(1, tests x smallest p)); the alarm is
score >= DRIFT_THRESHOLD (an adjusted p below 0.001).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from scipy.stats import chi2_contingency, kstwo

from engine.records.reference import STAT_NAMES, MonitoringReference

DRIFT_THRESHOLD = 3.0
MIN_WINDOW = 30
HEADER_FACTS = (
    "modality",
    "manufacturer",
    "view_position",
    "photometric_interpretation",
    "bits_stored",
    "age_band",
)


def weighted_ks(
    reference: np.ndarray, weights: np.ndarray, window: np.ndarray
) -> tuple[float, float]:
    """(statistic, p-value) of the KS test between a weighted reference sample and a window.
    The p-value uses the effective reference size (sum w)^2 / sum w^2."""
    keep = ~np.isnan(reference)
    reference, weights = reference[keep], weights[keep]
    window = window[~np.isnan(window)]
    if len(window) < 2 or len(reference) < 2 or weights.sum() <= 0:
        return float("nan"), float("nan")
    order = np.argsort(reference)
    reference, weights = reference[order], weights[order] / weights.sum()
    points = np.concatenate([reference, window])
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    cdf_reference = cumulative[np.searchsorted(reference, points, side="right")]
    cdf_window = np.searchsorted(np.sort(window), points, side="right") / len(window)
    statistic = float(np.abs(cdf_reference - cdf_window).max())
    effective = weights.sum() ** 2 / (weights**2).sum()
    n = effective * len(window) / (effective + len(window))
    p = float(kstwo.sf(statistic, max(1, round(n))))
    return statistic, p


HISTOGRAMS = ("probability", "ood_score", "population_score", "stat_mean", "stat_std", "feature_0")
BINS = 20


def histogram(reference: np.ndarray, weights: np.ndarray, window: np.ndarray) -> dict[str, Any]:
    """Shares per bin of the (re-weighted) reference and of the window, on common edges."""
    keep = ~np.isnan(reference)
    reference, weights = reference[keep], weights[keep]
    window = window[~np.isnan(window)]
    both = np.concatenate([reference, window])
    low, high = (
        (float(np.quantile(both, 0.005)), float(np.quantile(both, 0.995)))
        if len(both)
        else (0.0, 1.0)
    )
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, BINS + 1)
    ref, _ = np.histogram(np.clip(reference, low, high), edges, weights=weights)
    win, _ = np.histogram(np.clip(window, low, high), edges)
    return {
        "edges": [round(float(e), 5) for e in edges],
        "reference": [round(float(v), 5) for v in ref / max(ref.sum(), 1e-12)],
        "window": [round(float(v), 5) for v in win / max(win.sum(), 1)],
    }


def mix_weights(reference_positive: np.ndarray, window_positive_rate: float) -> np.ndarray:
    """Weights that give the reference the window's share of PNEUMONIA answers."""
    reference_rate = float(np.nanmean(reference_positive))
    rate = min(max(window_positive_rate, 0.0), 1.0)
    if reference_rate in (0.0, 1.0):
        return np.ones_like(reference_positive)
    return np.where(
        reference_positive > 0.5, rate / reference_rate, (1 - rate) / (1 - reference_rate)
    )


def window_signals(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The answered records' signals, named as the reference names them."""
    columns: dict[str, list[float]] = {
        name: []
        for name in (
            "probability",
            "ood_score",
            "population_score",
            *(f"stat_{k}" for k in STAT_NAMES),
        )
    }
    features: list[list[float]] = []
    for record in records:
        for name in ("probability", "ood_score", "population_score"):
            value = record.get(name)
            columns[name].append(np.nan if value is None else float(value))
        stats = record.get("image_stats") or {}
        for k in STAT_NAMES:
            columns[f"stat_{k}"].append(float(stats.get(k, np.nan)))
        features.append(record.get("feature_summary") or [])
    signals = {name: np.asarray(values, np.float64) for name, values in columns.items()}
    width = max((len(f) for f in features), default=0)
    for k in range(width):
        signals[f"feature_{k}"] = np.asarray(
            [f[k] if len(f) > k else np.nan for f in features], np.float64
        )
    return signals


def header_test(window: list[dict], before: list[dict]) -> dict[str, dict[str, Any]]:
    """Chi-square test per header fact, window against the window before it."""
    tests = {}
    for fact in HEADER_FACTS:
        now = Counter(str(r.get(fact)) for r in window)
        then = Counter(str(r.get(fact)) for r in before)
        values = sorted(set(now) | set(then))
        if len(values) < 2 or not before:
            tests[fact] = {"test": "chi-square vs the previous window", "p_value": None}
            continue
        table = np.array([[now[v] for v in values], [then[v] for v in values]])
        p = float(chi2_contingency(table)[1])
        tests[fact] = {"test": "chi-square vs the previous window", "p_value": p}
    return tests


def drift_report(
    window: list[dict[str, Any]],
    reference: MonitoringReference | None,
    positive_label: str,
    before: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-signal tests and the combined score of the answered records of `window`."""
    answered = [
        r for r in window if r.get("refusal_code") is None and r.get("probability") is not None
    ]
    report: dict[str, Any] = {
        "answered": len(answered),
        "threshold": DRIFT_THRESHOLD,
        "score": None,
        "alarm": False,
        "signals": {},
        "method": (
            "Kolmogorov-Smirnov per signal against the bundle's reference re-weighted to the "
            "window's PNEUMONIA share; header facts chi-square against the previous window; "
            "Bonferroni: score = -log10(min(1, tests x smallest p))"
        ),
    }
    if reference is None or len(answered) < MIN_WINDOW:
        report["note"] = (
            "no monitoring reference in this bundle"
            if reference is None
            else f"fewer than {MIN_WINDOW} answers in the window"
        )
        return report
    positive_rate = float(np.mean([r.get("label") == positive_label for r in answered]))
    weights = mix_weights(reference.signals["positive"], positive_rate)
    signals = window_signals(answered)
    p_values = []
    for name, values in signals.items():
        if name not in reference.signals:
            continue
        statistic, p = weighted_ks(reference.signals[name], weights, values)
        if math.isnan(p):
            continue
        report["signals"][name] = {"test": "KS", "statistic": statistic, "p_value": p}
        p_values.append(p)
    if before:
        before_answered = [r for r in before if r.get("refusal_code") is None]
        for fact, test in header_test(answered, before_answered).items():
            report["signals"][f"header_{fact}"] = test
            if test["p_value"] is not None:
                p_values.append(test["p_value"])
    report["histograms"] = {
        name: histogram(reference.signals[name], weights, signals[name])
        for name in HISTOGRAMS
        if name in signals and name in reference.signals
    }
    if p_values:
        adjusted = min(1.0, len(p_values) * min(p_values))
        report["score"] = float(-math.log10(max(adjusted, 1e-300)))
        report["alarm"] = report["score"] >= DRIFT_THRESHOLD
        report["tests"] = len(p_values)
    return report

"""The monitoring report as Prometheus gauges (set whenever GET /monitoring is computed)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

DRIFT_SCORE = Gauge(
    "cxr_drift_score",
    "Combined drift score of the last monitoring window (-log10 of the Bonferroni p).",
    multiprocess_mode="livemax",
)
DRIFT_THRESHOLD = Gauge(
    "cxr_drift_threshold", "Drift score at which the alarm is raised.", multiprocess_mode="livemax"
)
DRIFT_ALARM = Gauge(
    "cxr_drift_alarm", "1 when the last window's drift score is at or over the threshold.",
    multiprocess_mode="livemax",
)  # fmt: skip
RATE = Gauge(
    "cxr_window_rate",
    "Shares of the last monitoring window: positive, refused, warned.",
    ["kind"],
    multiprocess_mode="livemax",
)
ESTIMATED_ACCURACY = Gauge(
    "cxr_estimated_accuracy",
    "Accuracy of the last window estimated from the calibrated probabilities (no labels).",
    multiprocess_mode="livemax",
)
REALISED = Gauge(
    "cxr_realised",
    "Figures of the last window's answers that have a reader's verdict.",
    ["figure"],
    multiprocess_mode="livemax",
)
VERDICTS = Gauge(
    "cxr_realised_verdicts",
    "Answers of the last window with a verdict.",
    multiprocess_mode="livemax",
)


def publish(report: dict[str, Any], enabled: bool = True) -> None:
    if not enabled:
        return
    drift = report["drift"]
    if drift.get("score") is not None:
        DRIFT_SCORE.set(drift["score"])
    DRIFT_THRESHOLD.set(drift["threshold"])
    DRIFT_ALARM.set(1 if drift.get("alarm") else 0)
    for kind in ("positive", "refused", "warned"):
        value = report["rates"].get(kind)
        if value is not None:
            RATE.labels(kind).set(value)
    if report.get("estimated_accuracy") is not None:
        ESTIMATED_ACCURACY.set(report["estimated_accuracy"])
    realised = report.get("realised")
    VERDICTS.set(realised["n"] if realised else 0)
    if realised:
        for figure in ("accuracy", "sensitivity", "specificity", "auc", "ece"):
            value = realised[figure]["value"]
            if value is not None:
                REALISED.labels(figure).set(value)

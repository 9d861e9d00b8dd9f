"""Watching a deployed model: drift of a window of answers against the bundle's reference, the
rates, accuracy estimated from the calibrated probabilities, and realised figures from readers'
verdicts (GET /monitoring, its page and its Prometheus gauges)."""

from app.monitoring.drift import drift_report
from app.monitoring.report import monitoring_report

__all__ = ["drift_report", "monitoring_report"]

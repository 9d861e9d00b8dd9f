"""Prometheus metrics of the service, exposed at GET /metrics.

One uvicorn worker: the default registry. Several workers: set PROMETHEUS_MULTIPROC_DIR to an empty
folder writable by the service before it starts; every worker then writes its samples there and
/metrics sums them (prometheus-client's multiprocess mode), so a scrape sees the whole service
whichever worker answers it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# No *_created series: they double the exposition and nobody graphs them.
disable_created_metrics()

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5)

REQUEST_DURATION = Histogram(
    "cxr_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route, method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "cxr_http_requests_in_flight",
    "Requests being served right now (all routes).",
    multiprocess_mode="livesum",
)
PREDICTIONS_IN_PROGRESS = Gauge(
    "cxr_predictions_in_progress",
    "POST /predict requests admitted and not yet answered (see MAX_QUEUE_WAIT_MS, MAX_INFLIGHT).",
    multiprocess_mode="livesum",
)
PREDICTIONS = Counter("cxr_predictions_total", "Answered predictions by label.", ["label"])
PROBABILITY = Histogram(
    "cxr_prediction_probability",
    "Returned probabilities: a drift signal (the mix of answers the service gives).",
    buckets=tuple(round(0.05 * i, 2) for i in range(1, 21)),
)
OOD_SCORE = Histogram(
    "cxr_ood_score",
    "Out-of-distribution score of every scored image, refused or not (larger = further away).",
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
REFUSALS = Counter(
    "cxr_refusals_total", "POST /predict requests answered with an error, by reason.", ["reason"]
)
STAGE_DURATION = Histogram(
    "cxr_stage_duration_seconds",
    "Server time per stage of a prediction (decode, preprocess, inference, gradcam, overlay, "
    "encode); with the bundle's Grad-CAM graph the map is part of inference and there is no "
    "gradcam stage.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
MODEL_INFO = Gauge(
    "cxr_model_info",
    "The served model: always 1, labelled with its name and version.",
    ["name", "version"],
    multiprocess_mode="livemax",
)


def exposition() -> tuple[bytes, str]:
    """The current samples in Prometheus text format, and their content type."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_stopped() -> None:
    """Drop this worker's live gauges from the multiprocess totals when it exits."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())


class Recorder:
    """Every sample the service records goes through here, so METRICS_ENABLED is read in one
    place: `Recorder(enabled=False)` records nothing and callers never check the setting."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def request_started(self) -> None:
        if self.enabled:
            IN_FLIGHT.inc()

    def request_finished(
        self, route: str, method: str, status: int, seconds: float, refusal: str | None
    ) -> None:
        if self.enabled:
            IN_FLIGHT.dec()
            REQUEST_DURATION.labels(route, method, str(status)).observe(seconds)
            if refusal is not None:
                REFUSALS.labels(refusal).inc()

    def prediction_admitted(self) -> None:
        if self.enabled:
            PREDICTIONS_IN_PROGRESS.inc()

    def prediction_finished(self) -> None:
        if self.enabled:
            PREDICTIONS_IN_PROGRESS.dec()

    def prediction(
        self, label: str, probability: float, ood_score: float | None, timings_ms: dict
    ) -> None:
        if not self.enabled:
            return
        PREDICTIONS.labels(label).inc()
        PROBABILITY.observe(probability)
        self.ood_score(ood_score)
        for stage, ms in timings_ms.items():
            if stage != "total":
                STAGE_DURATION.labels(stage).observe(ms / 1000.0)

    def ood_score(self, score: float | None) -> None:
        """The guard's score of an image, answered or refused (the drift signal)."""
        if self.enabled and score is not None:
            OOD_SCORE.observe(score)

    def model_loaded(self, name: str, version: str) -> None:
        if self.enabled:
            MODEL_INFO.labels(name, version).set(1)

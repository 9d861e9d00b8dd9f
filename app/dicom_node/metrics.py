"""The node's Prometheus counters, in a registry of their own (served on DICOM_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "cxr_dicom_received_total", "Films received and spooled for analysis.", registry=r
        )
        self.ignored = Counter(
            "cxr_dicom_ignored_total",
            "Objects received and not analysed because they are results (SR, SC, "
            "presentation states) or were made by this node.",
            registry=r,
        )
        self.failed_stores = Counter(
            "cxr_dicom_store_failures_total",
            "C-STORE requests answered with a failure status, by reason.",
            ["reason"],
            registry=r,
        )
        self.rejected_associations = Counter(
            "cxr_dicom_rejected_associations_total",
            "Associations refused because the caller is not in DICOM_ALLOWED_CALLERS.",
            registry=r,
        )
        self.analysed = Counter(
            "cxr_dicom_analysed_total", "Films analysed, by label.", ["label"], registry=r
        )
        self.refused = Counter(
            "cxr_dicom_refused_total",
            "Films not analysed (the guard or the header checks refused them), by reason.",
            ["reason"],
            registry=r,
        )
        self.sent = Counter(
            "cxr_dicom_results_sent_total", "Result objects the destination confirmed.", registry=r
        )
        self.send_failures = Counter(
            "cxr_dicom_results_failed_total",
            "Result objects the destination refused for good (kept in the spool's failed/).",
            registry=r,
        )
        self.retrying = Gauge(
            "cxr_dicom_results_retrying",
            "Result objects waiting for the next try because the destination is down.",
            registry=r,
        )
        self.pending_films = Gauge(
            "cxr_dicom_films_pending", "Films received and not yet analysed.", registry=r
        )
        self.film_seconds = Histogram(
            "cxr_dicom_film_seconds",
            "From a film's arrival to its results waiting in the outbox.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )

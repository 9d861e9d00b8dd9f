"""What the running service knows: its settings and the predictor, once it has loaded."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import anyio

from app import metrics
from app.middleware import available_cores
from app.recording import AnswerLog, answer_log_from
from app.settings import Settings
from engine import ModelCard, Predictor

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    card_at_start: ModelCard | None = None  # read before loading, for names and labels
    predictor: Predictor | None = None
    error: str | None = None
    answers: AnswerLog | None = None  # the record of every answer (RECORD_ANSWERS)
    recorder: metrics.Recorder = field(init=False)
    # Predictions running at once: one per core. More threads only share the same cores (with
    # the GIL and each other's caches); the rest wait in arrival order, which is what the
    # admission estimate assumes.
    engine_slots: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = metrics.Recorder(self.settings.metrics_enabled)
        self.engine_slots = anyio.CapacityLimiter(available_cores())

    def start_recording(self) -> None:
        """Open the record of answers (its writer connects and migrates in the background)."""
        if self.answers is None:
            self.answers = answer_log_from(self.settings)

    def stop_recording(self) -> None:
        if self.answers is not None:
            self.answers.close()
            self.answers = None

    def record(self, row: dict) -> None:
        if self.answers is not None:
            self.answers.submit(row)

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    @property
    def model_name(self) -> str | None:
        card = self.predictor.bundle.card if self.predictor else self.card_at_start
        return card.name if card else None

    def load(self) -> None:
        """Load and validate the bundle; on failure keep a path-free reason for /health."""
        started = time.perf_counter()
        log.info(
            "loading the model from %s%s; /health answers 503 until it is ready",
            self.settings.model_dir,
            f" with Grad-CAM ({self.settings.gradcam_backend})"
            if self.settings.gradcam_enabled
            else "",
        )
        try:
            self.predictor = Predictor.from_settings(self.settings)
            card = self.predictor.bundle.card
            self.recorder.model_loaded(card.name, card.version)
            where = f" at {self.settings.public_url}/" if self.settings.public_url else ""
            log.info(
                "ready%s: model %s (threshold %.4f) loaded in %.1f s; /health is 200 from now",
                where,
                self.predictor.bundle.version,
                self.predictor.threshold,
                time.perf_counter() - started,
            )
        except Exception as exc:
            self.error = f"the model is not loaded: {exc}"
            log.error("%s (MODEL_DIR=%s)", self.error, self.settings.model_dir)

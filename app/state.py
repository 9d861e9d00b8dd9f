"""What the running service knows: its settings and the predictor, once it has loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.inference import Predictor
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    predictor: Predictor | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def load(self) -> None:
        """Load and validate the bundle; on failure keep the reason for /health and /predict."""
        try:
            self.predictor = Predictor.from_directory(
                self.settings.model_dir,
                onnx_threads=self.settings.onnx_threads,
                threshold=self.settings.threshold,
                max_image_pixels=self.settings.max_image_pixels,
                heatmap_max_side=self.settings.heatmap_max_side,
                tf_threads=self.settings.tf_threads,
                load_gradcam=self.settings.gradcam_enabled,
            )
            log.info(
                "model %s loaded from %s (threshold %.4f)",
                self.predictor.bundle.version,
                self.settings.model_dir,
                self.predictor.threshold,
            )
        except Exception as exc:
            self.error = f"the model is not loaded: {exc}"
            log.error(self.error)

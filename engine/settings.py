"""The engine's knobs, read from the environment (or a .env file) by pydantic-settings.

The service's `Settings` extends this class with its HTTP knobs, so one object, read in one
place, configures a running process; `Predictor.from_settings` takes either.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.card import CARD_FILE


def default_model_dir() -> Path:
    """The shipped bundle: beside the source in a clone (editable install), else the copy a
    regular install puts under <prefix>/share/cxr-pneumonia."""
    candidates = (
        Path(__file__).resolve().parent.parent / "models" / "default",
        Path(sys.prefix) / "share" / "cxr-pneumonia" / "models" / "default",
    )
    return next((c for c in candidates if (c / CARD_FILE).is_file()), candidates[0])


class EngineSettings(BaseSettings):
    """Each field is an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=())

    model_dir: Path = Field(default_factory=default_model_dir, description="Bundle folder.")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Override the bundle's decision threshold."
    )
    max_image_pixels: int = Field(
        50_000_000, gt=0, description="Largest width x height accepted, checked before decoding."
    )
    onnx_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="ONNX Runtime intra-op threads of each prediction while several run at once.",
    )
    onnx_threads_alone: int = Field(
        0,
        ge=0,
        le=64,
        description=(
            "ONNX Runtime intra-op threads of a prediction that runs alone (0 = every core the "
            "process may use; set it to ONNX_THREADS to turn this off)."
        ),
    )
    tf_threads: int = Field(1, ge=1, le=64, description="TensorFlow threads for Grad-CAM.")
    gradcam_enabled: bool = Field(
        True,
        description=(
            "Grad-CAM heatmaps (see GRADCAM_BACKEND). false: probabilities only, and "
            "heatmap=true answers 400."
        ),
    )
    gradcam_backend: Literal["onnx", "keras"] = Field(
        "onnx",
        description=(
            "onnx = the bundle's Grad-CAM graph gives the answer and the map in one ONNX Runtime "
            "call, without TensorFlow; keras = TensorFlow's gradients on model.keras (the "
            "reference; also used when a bundle has no Grad-CAM graph)."
        ),
    )
    heatmap_max_side: int = Field(
        512, ge=64, le=4096, description="Long side of the heatmap overlay PNG in pixels."
    )
    ood_guard: bool = Field(
        True,
        description=(
            "Refuse images that are not frontal chest X-rays (422 not_chest_xray). false: answer "
            "them with in_distribution=false instead."
        ),
    )
    population_check: Literal["warn", "refuse", "off"] = Field(
        "warn",
        description=(
            "A DICOM whose header gives an age outside the model's population (the card's "
            "population): warn = answer with a sentence in `warnings`, refuse = 422 "
            "outside_population, off = no check."
        ),
    )

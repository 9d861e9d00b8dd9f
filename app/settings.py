"""Every knob of the service, read from the environment (or a .env file), with defaults."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


class Settings(BaseSettings):
    """Service settings; each field is an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=())

    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Model bundle folder to serve.")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Override the bundle's decision threshold."
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest upload accepted (413 above)."
    )
    max_image_pixels: int = Field(
        50_000_000, gt=0, description="Largest width x height accepted, checked before decoding."
    )
    onnx_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads.")
    tf_threads: int = Field(1, ge=1, le=64, description="TensorFlow threads for Grad-CAM.")
    gradcam_enabled: bool = Field(
        True,
        description=(
            "Load TensorFlow and the Keras model for Grad-CAM heatmaps. false: probabilities only, "
            "about 550 MB less memory, and heatmap=true answers 400."
        ),
    )
    heatmap_default: bool = Field(True, description="Grad-CAM when the request does not say.")
    heatmap_max_side: int = Field(
        512, ge=64, le=4096, description="Long side of the heatmap overlay PNG in pixels."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, JSON list or comma-separated; empty = CORS closed.",
    )
    api_key: str | None = Field(
        None, description="When set, POST /predict requires the header X-API-Key with this value."
    )
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""The service's settings: the engine's, plus what only HTTP needs. One object per process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engine.settings import EngineSettings


class Settings(EngineSettings):
    """Each field is an environment variable of the same name in upper case."""

    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest upload accepted (413 above)."
    )
    heatmap_default: bool = Field(True, description="Grad-CAM when the request does not say.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, JSON list or comma-separated; empty = CORS closed.",
    )
    api_key: str | None = Field(
        None, description="When set, POST /predict requires the header X-API-Key with this value."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text for a terminal; json: one JSON object per line."
    )
    public_url: str = Field(
        "",
        description=(
            "Where clients reach the service, shown in the ready log line; `python -m app "
            "serve` sets it to the address it bound."
        ),
    )
    host: str = Field("127.0.0.1", description="Where `python -m app serve` listens.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `python -m app serve`.")
    workers: int = Field(
        1, ge=1, le=64, description="uvicorn worker processes of `python -m app serve`."
    )
    metrics_enabled: bool = Field(
        True, description="Prometheus metrics at GET /metrics; false: not collected, 404."
    )
    max_queue_wait_ms: float = Field(
        1000.0,
        gt=0,
        le=60000,
        description=(
            "Admission budget: POST /predict answers 503 with Retry-After at once when the "
            "expected wait before the prediction starts (from this worker's recent service "
            "times) exceeds it; a burst cleared within it is queued and answered."
        ),
    )
    max_inflight: int = Field(
        64,
        ge=1,
        le=1024,
        description=(
            "Hard cap on predictions in progress (or queued) per worker, bounding the memory "
            "held by waiting uploads; beyond it 503 at once whatever the expected wait."
        ),
    )

    dicom_ae_title: str = Field(
        "CXR_AI", min_length=1, max_length=16, description="AE title of `python -m app dicom-node`."
    )
    dicom_host: str = Field("127.0.0.1", description="Where the DICOM node listens.")
    dicom_port: int = Field(
        11112, ge=0, le=65535, description="The DICOM node's port (0: any free one)."
    )
    dicom_destination: str = Field(
        "",
        description=(
            "Where the node sends its results: `AE@host:port` (C-STORE) or an http(s):// "
            "DICOMweb base URL (STOW-RS to URL/studies). Empty: results stay in the spool's "
            "outbox folder."
        ),
    )
    dicom_allowed_callers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Calling AE titles (or `AE@host`) the node accepts, comma-separated; empty = anyone."
        ),
    )
    dicom_spool_dir: Path = Field(
        Path("dicom-spool"),
        description=(
            "Received films and unsent results wait here on disk (nothing is lost across a "
            "restart or while the destination is down)."
        ),
    )
    dicom_retry_max_seconds: float = Field(
        60.0, gt=0, le=3600, description="Longest wait between two tries to send a result."
    )
    dicom_metrics_port: int = Field(
        9112, ge=0, le=65535, description="The node's Prometheus metrics: :PORT/metrics; 0 = off."
    )

    record_answers: bool = Field(
        True,
        description=(
            "Keep a record of every answer and refusal in DATABASE_URL (never pixels, names, "
            "identifiers or dates of birth); off = no record."
        ),
    )
    database_url: str = Field(
        "sqlite:///records/answers.sqlite3",
        description=(
            "Where answers and readers' verdicts are recorded (SQLAlchemy URL): a SQLite file by "
            "default, postgresql+psycopg://user:password@host/db for PostgreSQL. Migrations "
            "run at start."
        ),
    )
    records_spool_dir: Path = Field(
        Path("records/spool"),
        description=(
            "Records wait here on disk while the database is unreachable and are written when "
            "it returns, across restarts (none lost, none twice)."
        ),
    )
    records_queue_size: int = Field(
        2000, ge=1, le=1_000_000, description="Records waiting in memory before they spill to disk."
    )
    monitoring_interval_seconds: float = Field(
        60.0,
        ge=0,
        description=(
            "How often the service computes the monitoring report of the last MONITORING_WINDOW "
            "answers for its Prometheus gauges (drift, rates, accuracy); 0 = only on request."
        ),
    )
    monitoring_window: int = Field(
        200, ge=10, le=20000, description="Answers in the window the gauges describe."
    )
    records_retention_days: float = Field(
        0, ge=0, description="Delete records older than this many days (checked hourly); 0 = keep."
    )

    @field_validator("cors_origins", "dicom_allowed_callers", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

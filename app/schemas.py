"""Response models: they are the HTTP contract and generate the OpenAPI docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ImageInfo(BaseModel):
    format: str = Field(description="Format detected from the bytes.", examples=["JPEG"])
    width: int = Field(description="Width of the upload in pixels.", examples=[2048])
    height: int = Field(description="Height of the upload in pixels.", examples=[1536])


class PredictionResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    probability: float = Field(ge=0.0, le=1.0, description="P(PNEUMONIA).", examples=[0.973])
    label: Literal["NORMAL", "PNEUMONIA"] = Field(
        description="PNEUMONIA when probability >= threshold."
    )
    threshold: float = Field(description="Decision threshold used for the label.", examples=[0.41])
    heatmap: str | None = Field(
        description=(
            "Grad-CAM overlay on the X-ray: standard base64 of a PNG (no data: prefix), at the "
            "upload's aspect ratio; it shows the regions that drove the predicted label. "
            "null when heatmap=false."
        ),
        examples=[None],
    )
    heatmap_empty: bool | None = Field(
        None,
        description=(
            "true when Grad-CAM found no region that raises the label's score (the overlay then "
            "shows the X-ray without colour); null when no heatmap was made."
        ),
        examples=[False],
    )
    model_version: str = Field(examples=["2026.11.22-1a2b3c4d"])
    image: ImageInfo
    timings_ms: dict[str, float] = Field(
        description="Server-side time per stage in milliseconds.",
        examples=[{"decode": 6.1, "preprocess": 0.4, "inference": 1.9, "total": 8.6}],
    )
    request_id: str = Field(examples=["6f1c2a9e0b7d4c55"])


class HealthResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ok", "loading", "error"] = Field(examples=["ok"])
    model_version: str | None = Field(None, examples=["2026.11.22-1a2b3c4d"])
    detail: str | None = Field(None, description="Why the service is not ready.", examples=[None])


class ErrorResponse(BaseModel):
    detail: Any = Field(description="What was wrong, in words (or a list for 422).")


class ModelCardResponse(BaseModel):
    """The bundle's model_card.json as written at export (fields beyond these are kept)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    created_at: str
    threshold: dict[str, Any]
    preprocessing: dict[str, Any]
    input: dict[str, Any]
    metrics: dict[str, Any] = Field(default_factory=dict)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, with examples."""
    examples = {
        400: "the JPEG data is truncated or corrupt",
        401: "missing or wrong API key (header X-API-Key)",
        413: "the upload is over the limit of 20971520 bytes",
        415: "not a supported image; send one of: JPEG, PNG",
        422: [{"type": "missing", "loc": ["body", "file"], "msg": "Field required"}],
        503: "the model is not loaded: model bundle directory not found: /models/x",
    }
    return {
        status: {
            "model": ErrorResponse,
            "content": {"application/json": {"example": {"detail": examples[status]}}},
        }
        for status in statuses
    }

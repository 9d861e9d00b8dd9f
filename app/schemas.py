"""Response models: they are the HTTP contract and generate the OpenAPI docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from engine import ModelCard


class ImageInfo(BaseModel):
    """The upload as read; for DICOM also acquisition facts (never patient data)."""

    format: str = Field(description="Format detected from the bytes.", examples=["JPEG"])
    width: int = Field(description="Width of the upload in pixels.", examples=[2048])
    height: int = Field(description="Height of the upload in pixels.", examples=[1536])
    modality: str | None = Field(None, description="DICOM Modality (CR, DX, ...).")
    view_position: str | None = Field(None, description="DICOM ViewPosition (PA, AP, ...).")
    photometric_interpretation: str | None = Field(None, examples=[None])
    bits_stored: int | None = Field(None, examples=[None])
    transfer_syntax: str | None = Field(None, examples=[None])
    frames: int | None = Field(None, description="DICOM frames; the first one is read.")


class PredictionResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    probability: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "Calibrated P(PNEUMONIA): of films given 0.8, about 80% have pneumonia (Platt "
            "scaling fitted on validation films, applied inside the model)."
        ),
        examples=[0.973],
    )
    label: str = Field(description="The positive label when probability >= threshold.")
    threshold: float = Field(description="Decision threshold used for the label.", examples=[0.41])
    heatmap: str | None = Field(
        description=(
            "Grad-CAM overlay on the X-ray: standard base64 of a PNG (no data: prefix; JPEG or "
            "WebP when heatmap_format asks), at the upload's aspect ratio, its long side at most "
            "HEATMAP_MAX_SIDE (512). It shows where the model saw evidence for pneumonia, whatever "
            "the label; its colour opacity is 0.6 x heatmap_strength x heatmap_grid, so a film "
            "with little evidence shows little colour. Not a segmentation of the lesion. null "
            "when heatmap=false."
        ),
        examples=[None],
    )
    heatmap_grid: list[list[float]] | None = Field(
        description=(
            "The raw Grad-CAM map the overlay is drawn from, at its layer's resolution: a list "
            "of rows, top to bottom, of values in [0, 1] covering the whole image (row r, "
            "column c covers the image from r/rows to (r+1)/rows of its height, and likewise "
            "for width). null when heatmap=false."
        ),
        examples=[[[0.0, 0.1, 0.0], [0.2, 1.0, 0.4], [0.0, 0.3, 0.1]]],
    )
    heatmap_strength: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "How strongly to draw heatmap_grid: the calibrated probability. The grid is scaled "
            "to its own peak, so draw each cell with opacity heatmap_strength x value (the "
            "overlay uses 0.6 x that): a NORMAL answer at 0.02 then shows almost no colour. "
            "null when heatmap=false."
        ),
        examples=[0.97],
    )
    film_png: str | None = Field(
        None,
        description=(
            "For DICOM uploads with a heatmap: the film as displayed (modality and VOI LUTs "
            "applied), base64 PNG (or heatmap_format) the size of the overlay, so a browser can "
            "draw the grid over it (browsers cannot show DICOM). null for JPEG and PNG."
        ),
        examples=[None],
    )
    in_distribution: bool = Field(
        description=(
            "Whether the image looks like the frontal chest films the model was trained on. "
            "false only when the service runs with OOD_GUARD=false (otherwise such images get "
            "422 not_chest_xray)."
        ),
        examples=[True],
    )
    ood_score: float | None = Field(
        description=(
            "Out-of-distribution score: larger = further from the training films; images above "
            "the model card's ood.threshold are refused. null for a bundle without a guard."
        ),
        examples=[0.62],
    )
    heatmap_empty: bool | None = Field(
        None,
        description=(
            "true when Grad-CAM found no region that raises the pneumonia score (the overlay then "
            "shows the X-ray without colour); null when no heatmap was made."
        ),
        examples=[False],
    )
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "Sentences the reader should see beside the answer; empty when there is nothing to "
            "say. E.g. a film that looks like an adult's from its pixels, or a DICOM whose "
            "header says the patient is outside the population the model was trained on "
            "(POPULATION_CHECK=refuse answers 422 outside_population instead). Never a birth "
            "date or an exact age."
        ),
        examples=[[]],
    )
    population_score: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "How much the film looks like an adult's rather than a young child's, from its "
            "pixels alone (0 to 1); at or above the model card's population.check.threshold "
            "the answer carries a warning (POPULATION_CHECK=refuse: 422 outside_population). "
            "null for a bundle without the check or with POPULATION_CHECK=off."
        ),
        examples=[0.01],
    )
    model_version: str = Field(examples=["2026.11.22-1a2b3c4d"])
    image: ImageInfo
    timings_ms: dict[str, float] = Field(
        description="Server-side time per stage in milliseconds.",
        examples=[{"decode": 6.1, "preprocess": 0.4, "inference": 1.9, "total": 8.6}],
    )
    request_id: str = Field(examples=["6f1c2a9e0b7d4c55"])


def prediction_response_model(card: ModelCard | None) -> type[PredictionResponse]:
    """The response model with `label` limited to the card's labels (plain text without a card)."""
    if card is None:
        return PredictionResponse
    negative, positive = card.labels
    return create_model(
        "PredictionResponse",
        __base__=PredictionResponse,
        label=(
            Literal[negative, positive],  # type: ignore[valid-type]
            Field(description=f"{positive} when probability >= threshold, else {negative}."),
        ),
    )


class HealthResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ok", "loading", "error"] = Field(examples=["ok"])
    model_version: str | None = Field(None, examples=["2026.11.22-1a2b3c4d"])
    detail: str | None = Field(None, description="Why the service is not ready.", examples=[None])


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, in one sentence.")


class NotChestXrayResponse(ErrorResponse):
    code: Literal["not_chest_xray"] = "not_chest_xray"
    ood_score: float | None = Field(
        description=(
            "The out-of-distribution score that refused it; null when the DICOM header alone "
            "said it is not a frontal chest film (a lateral view, another body part)."
        )
    )


class OutsidePopulationResponse(ErrorResponse):
    code: Literal["outside_population"] = "outside_population"


class ValidationErrorResponse(ErrorResponse):
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Each field that failed validation, as FastAPI sees it."
    )


ERROR_EXAMPLES = {
    400: "the JPEG data is truncated or corrupt",
    401: "missing or wrong API key (header X-API-Key)",
    413: "the upload is over the limit of 20971520 bytes",
    415: "not a supported image; send one of: JPEG, PNG",
    422: "the request is malformed: body.file: Field required",
    "not_chest_xray": "the image is not like the chest X-rays the model knows "
    "(out-of-distribution score 3.41, limit 1.17); send a frontal chest film",
    "outside_population": "An adult's film according to its DICOM header: the model was "
    "trained on children aged 1 to 5, frontal chest films from one hospital, so its answer may "
    "not hold for this patient",
    404: "no answer with request id 6f1c2a9e0b7d4c55 is on record",
    503: "the model is loading",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, with examples."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        example: dict[str, Any] = {"detail": ERROR_EXAMPLES[status]}
        model: type[BaseModel] = ErrorResponse
        if status == 422:
            refusal = {
                "detail": ERROR_EXAMPLES["not_chest_xray"],
                "code": "not_chest_xray",
                "ood_score": 3.41,
            }
            malformed = {
                **example,
                "errors": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required"}],
            }
            responses[status] = {
                "model": NotChestXrayResponse | OutsidePopulationResponse | ValidationErrorResponse,
                "description": (
                    "Not a frontal chest X-ray, a patient outside the model's population "
                    "(POPULATION_CHECK=refuse), or a malformed request."
                ),
                "content": {
                    "application/json": {
                        "examples": {
                            "not_chest_xray": {"value": refusal},
                            "outside_population": {
                                "value": {
                                    "detail": ERROR_EXAMPLES["outside_population"],
                                    "code": "outside_population",
                                }
                            },
                            "malformed": {"value": malformed},
                        }
                    }
                },
            }
            continue
        responses[status] = {"model": model, "content": {"application/json": {"example": example}}}
    return responses

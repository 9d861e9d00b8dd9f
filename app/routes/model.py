"""GET /model: the served model's card, and how this process serves it."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.deps import PredictorDep
from app.schemas import error_responses
from engine import ModelCard

router = APIRouter(tags=["model"])


class Served(BaseModel):
    threshold: float = Field(description="The threshold in use (THRESHOLD overrides the card's).")
    gradcam: bool = Field(description="Whether heatmaps can be asked for.")


class ModelInfo(ModelCard):
    served: Served


@router.get(
    "/model",
    response_model=ModelInfo,
    summary="The model card of the served bundle",
    responses=error_responses(503),
)
def model_card(predictor: PredictorDep) -> ModelInfo:
    """Version, hashes, preprocessing, threshold, metrics and data summary of the served model."""
    served = Served(threshold=predictor.threshold, gradcam=predictor.gradcam is not None)
    return ModelInfo(**predictor.bundle.card.model_dump(), served=served)

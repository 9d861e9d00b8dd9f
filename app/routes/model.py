"""The served model's card."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from app.schemas import ModelCardResponse, error_responses

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    response_model=ModelCardResponse,
    summary="The model card of the served bundle",
    responses=error_responses(503),
)
def model_card(request: Request) -> ModelCardResponse:
    """Version, hashes, preprocessing, threshold, metrics and data summary of the served model."""
    state = request.app.state.service
    if not state.ready:
        raise HTTPException(503, state.error or "the model is loading")
    card = dict(state.predictor.bundle.card)
    card["threshold"] = {**card["threshold"], "served_value": state.predictor.threshold}
    return ModelCardResponse(**card)

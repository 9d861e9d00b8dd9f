"""Readiness and liveness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import RETRY_AFTER_SECONDS, StateDep
from app.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Ready to predict?",
    responses={
        503: {
            "model": HealthResponse,
            "description": "The model is loading, or could not be loaded (see detail).",
            "content": {
                "application/json": {
                    "example": {"status": "error", "detail": "the model is not loaded: ..."}
                }
            },
        }
    },
)
def health(state: StateDep) -> JSONResponse:
    """200 with the model version once the model is loaded and warmed up; 503 before or on error."""
    if state.predictor is not None:
        body = HealthResponse(status="ok", model_version=state.predictor.bundle.version)
        return JSONResponse(body.model_dump())
    status = "error" if state.error else "loading"
    body = HealthResponse(status=status, detail=state.error or "the model is loading")
    return JSONResponse(
        body.model_dump(), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@router.get("/health/live", response_model=HealthResponse, summary="Is the process up?")
def live() -> HealthResponse:
    """200 whenever the process answers, whether or not the model is ready (liveness probe)."""
    return HealthResponse(status="ok")

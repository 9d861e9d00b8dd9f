"""Dependencies routes declare as parameters: the ready predictor and the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from app.state import ServiceState
from engine import Predictor

# Seconds a client should wait before retrying a 503 (loading takes a few seconds).
RETRY_AFTER_SECONDS = 5

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required on POST /predict when the service sets API_KEY.",
)


# The dependencies are `async def` though none awaits: FastAPI runs a plain `def` dependency in
# its thread pool, three hand-offs to a worker thread and back before every /predict for what
# are attribute reads (about a millisecond of the answer, measured before the route started).


async def service_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(service_state)]


async def ready_predictor(state: StateDep) -> Predictor:
    """The loaded predictor, or 503 with the reason and a Retry-After."""
    if state.predictor is None:
        raise HTTPException(
            503,
            state.error or "the model is loading",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return state.predictor


PredictorDep = Annotated[Predictor, Depends(ready_predictor)]


async def require_api_key(state: StateDep, supplied: str | None = Security(api_key_header)) -> None:
    expected = state.settings.api_key
    if expected and not (supplied and secrets.compare_digest(supplied, expected)):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")

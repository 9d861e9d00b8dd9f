"""GET /monitoring: the last N answers against the bundle's reference (JSON), and its page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from app.deps import PredictorDep, StateDep, require_api_key
from app.monitoring import monitoring_report
from app.monitoring.gauges import publish
from app.routes.web import CONTENT_SECURITY_POLICY
from app.schemas import error_responses

router = APIRouter(tags=["monitoring"])
PAGE = Path(__file__).resolve().parent.parent / "web" / "monitoring.html"


@router.get(
    "/monitoring",
    summary="Drift, rates and accuracy of the last N answers",
    responses=error_responses(401, 422, 503),
    dependencies=[Depends(require_api_key)],
)
async def monitoring(
    state: StateDep,
    predictor: PredictorDep,
    window: int = Query(200, ge=10, le=20000, description="How many of the newest answers."),
) -> dict[str, Any]:
    """The window against the reference written into the bundle at export: `drift` (per-signal
    tests, `score`, `threshold`, `alarm`), `rates`, `estimated_accuracy` (from the calibrated
    probabilities, no labels needed) and, where readers' verdicts exist, `realised` figures with
    95% intervals beside the card's (`card`)."""
    if state.answers is None:
        raise HTTPException(503, "answers are not recorded on this server (RECORD_ANSWERS=off)")
    state.answers.flush(2.0)
    try:
        report = await anyio.to_thread.run_sync(
            monitoring_report,
            state.answers.store,
            predictor.bundle.card,
            predictor.reference,
            window,
        )
    except Exception as exc:
        raise HTTPException(503, "the record database is unreachable; try again later") from exc
    publish(report, state.settings.metrics_enabled)
    return report


@router.get(
    "/monitoring/page",
    response_class=HTMLResponse,
    summary="The monitoring page (draws /monitoring)",
)
def monitoring_page() -> HTMLResponse:
    """The window against the reference as histograms, the drift score over time, the rates."""
    return HTMLResponse(
        PAGE.read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )

"""GET /metrics: Prometheus text format (never shed, never behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def prometheus_metrics() -> Response:
    """Request latency by route and status, predictions by label, the probability and
    out-of-distribution score distributions, refusals by reason, per-stage durations, requests in
    flight and the served model's version."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)

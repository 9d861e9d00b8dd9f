"""POST /predict: one X-ray in, probability, label and Grad-CAM overlay out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, File, Header, HTTPException, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from app.schemas import ImageInfo, PredictionResponse, error_responses
from imaging import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

router = APIRouter(tags=["prediction"])

_STATUS_FOR_ERROR = {
    ImageTooLargeError: 413,
    UnsupportedImageError: 415,
    CorruptImageError: 400,
    ImageTooSmallError: 400,
}


def _check_api_key(request: Request, supplied: str | None) -> None:
    expected = request.app.state.service.settings.api_key
    if expected and not (supplied and secrets.compare_digest(supplied, expected)):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")


@router.post(
    "/predict",
    response_model=PredictionResponse,
    summary="Classify one chest X-ray",
    responses=error_responses(400, 401, 413, 415, 422, 503),
)
async def predict(
    request: Request,
    file: UploadFile = File(description="The X-ray: JPEG or PNG, grayscale or colour, any size."),
    heatmap: bool | None = Query(
        None, description="Return a Grad-CAM overlay (default: true, or HEATMAP_DEFAULT)."
    ),
    x_api_key: str | None = Header(None, description="Required when the service sets API_KEY."),
) -> PredictionResponse:
    """The format is read from the bytes, not the file name; the chain is the one training used."""
    state = request.app.state.service
    _check_api_key(request, x_api_key)
    if not state.ready:
        raise HTTPException(503, state.error or "the model is loading")
    form = await request.form()
    if len(form.getlist("file")) != 1:
        raise HTTPException(422, "send exactly one file in the form field 'file'")
    limit = state.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the upload is over the limit of {limit} bytes")
    gradcam = state.settings.gradcam_enabled
    want_heatmap = (state.settings.heatmap_default and gradcam) if heatmap is None else heatmap
    if want_heatmap and not gradcam:
        raise HTTPException(400, "heatmaps are turned off on this server (GRADCAM_ENABLED=false)")
    try:
        result = await run_in_threadpool(state.predictor.predict, data, want_heatmap)
    except ImageError as exc:
        raise HTTPException(_STATUS_FOR_ERROR.get(type(exc), 400), str(exc)) from exc
    return PredictionResponse(
        probability=result.probability,
        label=result.label,
        threshold=result.threshold,
        heatmap=result.heatmap_png_base64,
        heatmap_empty=result.heatmap_empty,
        model_version=state.predictor.bundle.version,
        image=ImageInfo(format=result.image_format, width=result.width, height=result.height),
        timings_ms=result.timings_ms,
        request_id=request.scope.get("state", {}).get("request_id", ""),
    )

"""POST /predict: one X-ray in, probability, label and Grad-CAM overlay out."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio.to_thread
from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile

from app import metrics
from app.deps import PredictorDep, StateDep, require_api_key
from app.recording import refusal_record
from app.schemas import ImageInfo, PredictionResponse, error_responses
from engine import Prediction, Predictor
from engine.overlay import PictureFormat, encode_picture
from engine.records.rows import Upload, answer_row
from imaging import ImageError


def build_router(response_model: type[PredictionResponse]) -> APIRouter:
    """The route, answering with `response_model` (its labels come from the model card)."""
    router = APIRouter(tags=["prediction"])

    @router.post(
        "/predict",
        response_model=response_model,
        summary="Classify one chest X-ray",
        responses=error_responses(400, 401, 413, 415, 422, 503),
        dependencies=[Depends(require_api_key)],
    )
    async def predict(
        request: Request,
        state: StateDep,
        predictor: PredictorDep,
        file: UploadFile = File(
            description="The X-ray: JPEG, PNG or DICOM, grayscale or colour, any size."
        ),
        heatmap: bool | None = Query(
            None, description="Return a Grad-CAM overlay (default: true, or HEATMAP_DEFAULT)."
        ),
        heatmap_format: PictureFormat = Query(
            "png",
            description="How the overlay (and a DICOM's film_png) is encoded: png (lossless, "
            "the default), jpeg or webp (lossy and smaller; webp is the slowest to encode).",
        ),
    ) -> PredictionResponse:
        """The format is read from the bytes, not the file name; the chain is training's."""
        form = await request.form()
        if len(form.getlist("file")) != 1:
            raise HTTPException(422, "send exactly one file in the form field 'file'")
        limit = state.settings.max_upload_bytes
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"the upload is over the limit of {limit} bytes")
        gradcam = predictor.gradcam is not None
        want_heatmap = (state.settings.heatmap_default and gradcam) if heatmap is None else heatmap
        if want_heatmap and not gradcam:
            raise HTTPException(
                400, "heatmaps are turned off on this server (GRADCAM_ENABLED=false)"
            )
        request_id = request.scope.get("state", {}).get("request_id", "")
        try:
            result, fields, row = await anyio.to_thread.run_sync(
                answer,
                predictor,
                data,
                Asked(want_heatmap, heatmap_format, request_id, state.answers is not None),
                limiter=state.engine_slots,
            )
        except ImageError as exc:
            state.record(refusal_record(exc, request_id, SOURCE, predictor.bundle.version, data))
            raise
        record(request, result, fields["timings_ms"], state.recorder)
        if row is not None:
            state.record(row)
        return response_model(**fields)

    return router


SOURCE = "predict"
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-hash")
# Smaller uploads are hashed in line: a 220 KB JPEG takes 0.14 ms, less than a hand-off.
HASH_BESIDE_BYTES = 1024 * 1024


def record(
    request: Request, result: Prediction, timings_ms: dict[str, float], recorder: metrics.Recorder
) -> None:
    """Metrics of an answered prediction, and its fields for the request's log line."""
    recorder.prediction(result.label, result.probability, result.ood_score, timings_ms)
    request.state.prediction = {
        "label": result.label,
        "probability": round(result.probability, 4),
        "ood_score": None if result.ood_score is None else round(result.ood_score, 3),
    }


def grid_rows(grid) -> list[list[float]]:
    """The map as JSON rows, 4 decimals (finer than any colour map shows)."""
    return [[round(float(v), 4) for v in row] for row in grid]


@dataclass(frozen=True)
class Asked:
    """What the request asked for, and whether its answer is recorded."""

    heatmap: bool
    picture_format: PictureFormat = "png"
    request_id: str = ""
    recorded: bool = False


@dataclass(frozen=True)
class EncodedPictures:
    """The answer's pictures in base64 (the overlay, and the film for a DICOM upload)."""

    heatmap: str | None = None
    film: str | None = None
    milliseconds: float = 0.0


def answer(predictor: Predictor, data: bytes, asked: Asked) -> tuple[Prediction, dict, dict | None]:
    """The whole answer in one worker thread, inside the engine's slot: the prediction, its
    pictures, the response's fields and the record's row, none of it on the event loop. The
    record's hash of the upload is computed beside the prediction (hashlib lets go of the GIL):
    4.6 ms for a 7 MB DICOM on the bench host, hidden when a core is free."""
    beside = asked.recorded and len(data) >= HASH_BESIDE_BYTES
    hashing = _HASHER.submit(Upload.of, data) if beside else None
    result, pictures = predict_and_encode(predictor, data, asked.heatmap, asked.picture_format)
    fields = answer_fields(result, pictures, predictor.bundle.version, asked.request_id)
    row = None
    if asked.recorded:
        version, timings = predictor.bundle.version, fields["timings_ms"]
        upload = hashing.result() if hashing is not None else Upload.of(data)
        row = answer_row(result, asked.request_id, SOURCE, version, upload, timings_ms=timings)
    return result, fields, row


def predict_and_encode(
    predictor: Predictor, data: bytes, heatmap: bool, picture_format: PictureFormat = "png"
) -> tuple[Prediction, EncodedPictures]:
    """The prediction and its pictures in one worker thread, inside the engine's slot: encoding
    neither holds the event loop nor runs beside the predictions the slots admit."""
    result = predictor.predict(data, heatmap)
    if result.heatmap is None:
        return result, EncodedPictures()
    started = time.perf_counter()

    def base64_picture(image) -> str:
        return base64.b64encode(encode_picture(image, picture_format)).decode("ascii")

    overlay = base64_picture(result.heatmap.overlay)
    film = base64_picture(result.heatmap.film) if result.image.format == "DICOM" else None
    return result, EncodedPictures(overlay, film, (time.perf_counter() - started) * 1000)


def answer_fields(
    result: Prediction, pictures: EncodedPictures, model_version: str, request_id: str
) -> dict:
    """The engine's answer and its encoded pictures as the response's fields."""
    timings = dict(result.timings_ms)
    if pictures.heatmap is not None:
        timings["encode"] = round(pictures.milliseconds, 3)
        timings["total"] = round(timings["total"] + timings["encode"], 3)
    return {
        "probability": result.probability,
        "label": result.label,
        "threshold": result.threshold,
        "heatmap": pictures.heatmap,
        "heatmap_grid": None if result.heatmap is None else grid_rows(result.heatmap.grid),
        "film_png": pictures.film,
        "in_distribution": result.in_distribution,
        "ood_score": result.ood_score,
        "heatmap_empty": None if result.heatmap is None else result.heatmap.empty,
        "heatmap_strength": None if result.heatmap is None else result.heatmap.strength,
        "warnings": list(result.warnings),
        "population_score": result.population_score,
        "model_version": model_version,
        "image": ImageInfo(
            format=result.image.format,
            width=result.image.width,
            height=result.image.height,
            **(result.image.dicom or {}),
        ),
        "timings_ms": timings,
        "request_id": request_id,
    }

"""The FastAPI application: `uvicorn app.main:app` serves the bundle named by MODEL_DIR."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.formparsers import MultiPartParser

from app.errors import install_error_handlers
from app.logs import configure_logging
from app.metrics import mark_worker_stopped
from app.middleware import (
    BodySizeLimitMiddleware,
    LoadShedMiddleware,
    RequestObservabilityMiddleware,
)
from app.routes import feedback, health, metrics, model, monitoring, predict, v2, web
from app.schemas import prediction_response_model
from app.settings import Settings
from app.state import ServiceState
from engine import CardError, ModelCard

log = logging.getLogger(__name__)

# Multipart framing around the file; the file itself is held to MAX_UPLOAD_BYTES in the route.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

DESCRIPTION = """
Classifies a chest X-ray as NORMAL or PNEUMONIA with a from-scratch CNN served by ONNX Runtime,
and shows where the model looked with a Grad-CAM heatmap.

Research and decision support only; not a medical device.
"""


def _card_or_none(settings: Settings) -> ModelCard | None:
    """The card, read at start-up so the OpenAPI schema can name its labels (cheap: JSON only)."""
    try:
        return ModelCard.read(settings.model_dir)
    except (CardError, OSError):
        return None  # the loader reports the reason on /health


async def publish_monitoring(state: ServiceState) -> None:
    """Keep the monitoring gauges fresh for Prometheus: the report of the last window, every
    MONITORING_INTERVAL_SECONDS, computed off the event loop."""
    from app.monitoring import monitoring_report
    from app.monitoring.gauges import publish

    while True:
        await anyio.sleep(state.settings.monitoring_interval_seconds)
        if state.answers is None or state.predictor is None:
            continue
        try:
            report = await anyio.to_thread.run_sync(
                monitoring_report,
                state.answers.store,
                state.predictor.bundle.card,
                state.predictor.reference,
                state.settings.monitoring_window,
            )
            publish(report)
        except Exception as exc:  # the database may be down: try at the next interval
            log.warning("the monitoring report could not be computed: %s", exc)


def document_optional_key(app: FastAPI, settings: Settings) -> None:
    """Without API_KEY the routes behind the key answer without it: say so in the OpenAPI
    schema (an empty security alternative), so clients and schema checkers are not told a
    header is required that this server does not ask for."""
    if settings.api_key:
        return
    generate = app.openapi

    def openapi() -> dict:
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if security and {} not in security:
                    security.append({})
        return schema

    app.openapi = openapi


def keep_uploads_in_memory(max_upload_bytes: int) -> None:
    """Starlette spools a multipart file over 1 MB to a temporary file on disk, which the route
    then reads back whole: 20 of the 23 ms a 7 MB DICOM spent in form parsing (measured). Up to
    the upload limit (the body size middleware refuses larger bodies) the part stays in memory."""
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, max_upload_bytes)


def create_app(settings: Settings | None = None, load_in_background: bool = True) -> FastAPI:
    """Build the service. The bundle loads in a background thread: /health says 503 until ready."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    keep_uploads_in_memory(settings.max_upload_bytes)
    card = _card_or_none(settings)
    state = ServiceState(settings, card_at_start=card)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start_recording()
        if load_in_background:
            threading.Thread(target=state.load, name="model-loader", daemon=True).start()
        else:
            state.load()
        async with anyio.create_task_group() as tasks:
            if settings.monitoring_interval_seconds > 0 and settings.metrics_enabled:
                tasks.start_soon(publish_monitoring, state)
            yield
            tasks.cancel_scope.cancel()
        state.stop_recording()
        mark_worker_stopped()

    # FastAPIOffline serves the Swagger UI and ReDoc assets itself: /docs works without internet
    # access, as it must inside a hospital network.
    app = FastAPIOffline(
        title="Chest X-ray pneumonia classifier",
        version="0.2.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = state
    app.include_router(predict.build_router(prediction_response_model(card)))
    app.include_router(feedback.router)
    app.include_router(monitoring.router)
    app.include_router(health.router)
    app.include_router(model.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(v2.router)
    app.include_router(web.router)
    install_error_handlers(app)
    document_optional_key(app, settings)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        upload_limit=settings.max_upload_bytes,
    )
    app.add_middleware(
        LoadShedMiddleware,
        max_inflight=settings.max_inflight,
        max_queue_wait_seconds=settings.max_queue_wait_ms / 1000,
        recorder=state.recorder,
        drain_limit=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
    )
    app.add_middleware(RequestObservabilityMiddleware, recorder=state.recorder)
    return app


app = create_app()

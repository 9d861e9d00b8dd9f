"""The FastAPI application: `uvicorn app.main:app` serves the bundle named by MODEL_DIR."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from app.middleware import BodySizeLimitMiddleware, RequestLogMiddleware
from app.routes import health, model, predict
from app.settings import Settings
from app.state import ServiceState

log = logging.getLogger(__name__)

# Multipart framing around the file; the file itself is held to MAX_UPLOAD_BYTES in the route.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

DESCRIPTION = """
Classifies a chest X-ray as NORMAL or PNEUMONIA with a from-scratch CNN served by ONNX Runtime,
and shows where the model looked with a Grad-CAM heatmap.

Research and decision support only; not a medical device.
"""


def create_app(settings: Settings | None = None, load_in_background: bool = True) -> FastAPI:
    """Build the service. The bundle loads in a background thread: /health says 503 until ready."""
    settings = settings or Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_in_background:
            threading.Thread(target=state.load, name="model-loader", daemon=True).start()
        else:
            state.load()
        yield

    # FastAPIOffline serves the Swagger UI and ReDoc assets itself: /docs works without internet
    # access, as it must inside a hospital network.
    app = FastAPIOffline(
        title="Chest X-ray pneumonia classifier",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = state
    app.include_router(predict.router)
    app.include_router(health.router)
    app.include_router(model.router)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

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
    app.add_middleware(RequestLogMiddleware)
    return app


app = create_app()

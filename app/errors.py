"""Exception handlers: every error answer is JSON whose `detail` is one sentence.

`ImageError` subclasses map to statuses by `isinstance`, most specific first; a refusal by the
out-of-distribution guard adds `code` and `ood_score`, one by the population check adds `code`.
Nothing here echoes paths or tracebacks.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.refusals import status_and_reason
from engine.population import OutsidePopulationError
from imaging import ImageError, NotChestXrayError

log = logging.getLogger(__name__)


def image_error_body(exc: ImageError) -> dict:
    body: dict = {"detail": str(exc)}
    if isinstance(exc, NotChestXrayError):
        body["code"] = exc.code
        body["ood_score"] = exc.ood_score
    elif isinstance(exc, OutsidePopulationError):
        body["code"] = exc.code
    return body


def _one_sentence(errors: list[dict]) -> str:
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "the request is malformed: " + "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImageError)
    async def image_error(request: Request, exc: ImageError) -> JSONResponse:
        status, request.state.refusal = status_and_reason(exc)
        if isinstance(exc, NotChestXrayError):
            request.app.state.service.recorder.ood_score(exc.ood_score)
        return JSONResponse(image_error_body(exc), status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": _one_sentence(errors), "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

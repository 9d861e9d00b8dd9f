"""Pure ASGI middleware: observability (request id, metrics, one log line per request), load
shedding, and the body size limit.

The size limit counts bytes as they arrive and answers 413 as soon as the body passes it, so an
oversized upload is never buffered whole (a declared Content-Length over the limit is refused before
reading anything).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException

from app import metrics

log = logging.getLogger("app.access")

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(HTTPException):
    """Raised from `receive` mid-body; an HTTPException so FastAPI's form parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the upload is over the limit of {limit} bytes")


async def _send_json(
    send: Any, status: int, body: dict[str, Any], headers=(), close: bool = True
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *([(b"connection", b"close")] if close else []),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimitMiddleware:
    """413 for request bodies over `max_body_bytes`, checked while streaming."""

    def __init__(self, app: Any, max_body_bytes: int, upload_limit: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_limit = upload_limit or max_body_bytes  # the number users configured

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the upload is over the limit of {self.upload_limit} bytes"
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_json(send, 413, {"detail": detail})
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.upload_limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_json(send, 413, {"detail": detail})


# A request id from a proxy is kept when it is short and plain; anything else gets a fresh one.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REFUSAL_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    413: "too_large",
    415: "unsupported_format",
    422: "malformed_request",
    503: "not_ready",
}


def request_state(scope: Scope) -> dict[str, Any]:
    """The per-request dict that Starlette exposes as `request.state`."""
    return scope.setdefault("state", {})


class RequestObservabilityMiddleware:
    """Request id, in-flight gauge, duration histogram, refusal counter and one log line.

    Routes and error handlers leave what they know in the request state (`prediction`,
    `refusal`); this middleware turns it into metrics and the log line when the answer is sent.
    """

    def __init__(
        self,
        app: Any,
        recorder: metrics.Recorder,
        predict_paths: frozenset[str] = frozenset({"/predict"}),
    ) -> None:
        self.app = app
        self.predict_paths = predict_paths
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex[:16]
        state = request_state(scope)
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                # Server-Timing: the server's own time up to the answer (browsers' devtools show
                # it; a load test on a shared machine separates it from the client's)
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    (b"server-timing", took),
                ]
            await send(message)

        self.recorder.request_started()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope.get("method", "")
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": method,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            }
            if scope.get("path") in self.predict_paths and status >= 400:
                fields["refusal"] = state.get("refusal") or _REFUSAL_BY_STATUS.get(status, "error")
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.recorder.request_finished(route, method, status, seconds, fields.get("refusal"))
            fields.update(state.get("prediction") or {})
            words = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("method", "path"))
            log.info("%s %s %s", method, scope.get("path"), words, extra=fields)


async def _drain(receive: Any, limit: int) -> bool:
    """Read and drop the request body, at most `limit` bytes: a client still sending its upload
    when it is refused gets the answer, not a reset connection. False if it could not be read."""
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        seen += len(message.get("body", b""))
        if seen > limit:
            return False
        if not message.get("more_body", False):
            return True


class LoadShedMiddleware:
    """At most `max_inflight` predictions in progress; beyond that, 503 at once, not a queue.

    Only the prediction paths count and are shed; health, metrics and everything else always
    pass. One event loop per worker, so a plain counter is exact.
    """

    def __init__(
        self,
        app: Any,
        max_inflight: int,
        recorder: metrics.Recorder,
        paths: frozenset[str] = frozenset({"/predict"}),
        retry_after_seconds: int = 1,
        drain_limit: int = 0,
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.drain_limit = drain_limit  # bytes of a refused request's body read before the 503
        self.recorder = recorder
        self.paths = paths
        self.retry_after = str(retry_after_seconds).encode()
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.max_inflight:
            request_state(scope)["refusal"] = "overloaded"
            detail = (
                f"the service is busy ({self.in_progress} predictions in progress); "
                "retry in a moment"
            )
            drained = await _drain(receive, self.drain_limit)
            await _send_json(
                send,
                503,
                {"detail": detail},
                [(b"retry-after", self.retry_after)],
                close=not drained,
            )
            return
        self.in_progress += 1
        self.recorder.prediction_admitted()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
            self.recorder.prediction_finished()

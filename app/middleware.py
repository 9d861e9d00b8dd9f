"""Pure ASGI middleware: observability (request id, metrics, one log line per request), load
shedding by expected waiting time, and the body size limit.

The size limit counts bytes as they arrive and answers 413 as soon as the body passes it, so an
oversized upload is never buffered whole (a declared Content-Length over the limit is refused before
reading anything).
"""

from __future__ import annotations

import json
import logging
import math
import os
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


class WaitEstimate:
    """How long a newly arrived prediction would wait before it starts, from this replica's own
    recent service times.

    Each finished prediction's wall time is turned into the core-time it needed: a request that
    ran while `n` predictions shared `cores` cores got `min(1, cores / n)` of one, so its work is
    `duration x min(1, cores / n)`. The work ahead of a new arrival is the predictions in progress
    times the recent mean work (an exponential average), spread over the cores. Unknown until the
    first prediction finishes: then nothing is refused for waiting (the count cap still holds).
    """

    def __init__(self, cores: int, smoothing: float = 0.2) -> None:
        self.cores = max(1, cores)
        self.smoothing = smoothing
        self.mean_work_seconds: float | None = None

    def record(self, duration_seconds: float, sharing: int) -> None:
        work = duration_seconds * min(1.0, self.cores / max(1, sharing))
        if self.mean_work_seconds is None:
            self.mean_work_seconds = work
        else:
            self.mean_work_seconds += self.smoothing * (work - self.mean_work_seconds)

    def seconds(self, in_progress: int) -> float:
        if self.mean_work_seconds is None:
            return 0.0
        return in_progress * self.mean_work_seconds / self.cores


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LoadShedMiddleware:
    """Admission by waiting time: a prediction is refused (503, Retry-After) only when the
    expected wait before it starts exceeds `max_queue_wait_seconds`, or when `max_inflight`
    predictions are already in progress (a hard cap on memory held by queued uploads). A burst
    the replica clears within the budget is queued and answered; a flood is refused at once.

    Only the prediction paths count and are shed; health, metrics and everything else always
    pass. One event loop per worker, so plain counters are exact.
    """

    def __init__(
        self,
        app: Any,
        max_inflight: int,
        recorder: metrics.Recorder,
        max_queue_wait_seconds: float = 1.0,
        cores: int | None = None,
        paths: frozenset[str] = frozenset({"/predict"}),
        drain_limit: int = 0,
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.max_queue_wait_seconds = max_queue_wait_seconds
        self.wait = WaitEstimate(cores or available_cores())
        self.drain_limit = drain_limit  # bytes of a refused request's body read before the 503
        self.recorder = recorder
        self.paths = paths
        self.in_progress = 0

    def refusal(self) -> tuple[str, float] | None:
        """Why a prediction arriving now is refused, and the Retry-After in seconds; None: admit."""
        if self.in_progress >= self.max_inflight:
            return f"{self.in_progress} predictions in progress", 1.0
        expected = self.wait.seconds(self.in_progress)
        if expected > self.max_queue_wait_seconds:
            return f"expected wait {expected * 1000:.0f} ms", expected
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        refused = self.refusal()
        if refused is not None:
            reason, retry_seconds = refused
            request_state(scope)["refusal"] = "overloaded"
            detail = f"the service is busy ({reason}); retry in a moment"
            drained = await _drain(receive, self.drain_limit)
            await _send_json(
                send,
                503,
                {"detail": detail},
                [(b"retry-after", str(max(1, math.ceil(retry_seconds))).encode())],
                close=not drained,
            )
            return
        self.in_progress += 1
        sharing = self.in_progress
        self.recorder.prediction_admitted()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.wait.record(time.perf_counter() - started, max(sharing, self.in_progress))
            self.in_progress -= 1
            self.recorder.prediction_finished()

"""Pure ASGI middleware: a request id and one log line per request, and the body size limit.

The size limit counts bytes as they arrive and answers 413 as soon as the body passes it, so an
oversized upload is never buffered whole (a declared Content-Length over the limit is refused before
reading anything).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException

log = logging.getLogger("app.access")

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(HTTPException):
    """Raised from `receive` mid-body; an HTTPException so FastAPI's form parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the upload is over the limit of {limit} bytes")


async def _send_json(send: Any, status: int, body: dict[str, Any], headers=()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
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


class RequestLogMiddleware:
    """Adds X-Request-ID and logs method, path, status, milliseconds and request id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %d %.1fms id=%s",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )

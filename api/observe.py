"""Every HTTP request gets an id (the caller's X-Request-ID, or a new one, echoed back, on
its log lines and its trace) and a latency observation by route template, method and status,
measured until the body is sent (streams included). The server span itself is FastAPI's own
(its native OpenTelemetry support, which continues the caller's `traceparent`)."""

from __future__ import annotations

import re
import time
import uuid

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import metrics
from rag.logs import log_context

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # fullmatch: `$` would take a final "\n"


class Observe:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        method, status = scope["method"], 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        start = time.perf_counter()
        trace.get_current_span().set_attribute("rag.request_id", request_id)
        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # The route's template, not the path: ids in paths would make a series each.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                elapsed = time.perf_counter() - start
                metrics.HTTP_DURATION.labels(route, method, str(status)).observe(elapsed)

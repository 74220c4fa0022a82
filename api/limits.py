"""Request body limits, whatever the framing: a declared Content-Length over the limit is refused
before a byte is read; a body without one (`Transfer-Encoding: chunked`) is counted as it arrives
and refused the moment it passes the limit, so no caller can make the server buffer or spool
more than the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` mid-body. Bodies are read inside the app (FastAPI's parsing, or an
    endpoint such as Slack's), where the HTTP error handler answers it: a 413 in our shape."""


class BodyLimit:
    """Uploads (multipart) have one limit, every other body (JSON) a smaller one."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_json_bytes: int):
        self.app = app
        self.max_upload_bytes, self.max_json_bytes = max_upload_bytes, max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        upload = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit, setting = (
            (self.max_upload_bytes, "api.max_upload_mb")
            if upload
            else (self.max_json_bytes, "api.max_json_mb")
        )
        too_large = f"request body is over the {limit / 2**20:.0f} MiB limit ({setting})"
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            response = error_response(413, "payload_too_large", too_large, path=scope["path"])
            await response(scope, receive, send)
            return

        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(413, too_large)
            return message

        await self.app(scope, counted, send)

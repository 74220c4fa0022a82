"""Server-Sent Events shared by the streaming endpoints: the framing, and `relay`, which pulls a
synchronous answer stream from a worker thread and closes it when the client goes away."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from rag.answering import AnswerDone, AnswerEvent, AnswerStream
from rag.errors import RagError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
log = logging.getLogger("api")


def frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream broke after the response began: said in the stream, as a status cannot be."""

    code: str
    message: str


async def relay(
    events: AnswerStream, request: Request
) -> AsyncGenerator[AnswerEvent | StreamFailed, None]:
    """The events, one at a time from a worker thread, up to `AnswerDone` or a failure. A client
    that went away closes the stream, which cancels the model's generation. Iterate it inside
    `contextlib.aclosing` so that closing the response closes it at once."""
    try:
        while not await request.is_disconnected():
            try:
                event = await run_in_threadpool(next, events, None)
            except RagError as exc:
                yield StreamFailed(exc.code, exc.message)
                return
            except Exception:
                log.exception("streamed answer failed")
                yield StreamFailed("internal_error", "internal error")
                return
            if event is None:
                return
            yield event
            if isinstance(event, AnswerDone):
                return
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(events.close)

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, QueryCaller
from api.deps import RuntimeDep
from api.errors import error_responses
from api.schemas import Hit, QueryRequest, RetrieveResponse, SearchRequest
from api.sse import SSE_HEADERS, StreamFailed, frame, relay
from rag.answering import AnswerDelta, AnswerStream, VerifiedDelta
from rag.chat import condense
from rag.errors import InvalidInput
from rag.factory import Runtime
from rag.models import Answer
from rag.scoreboard import rater

router = APIRouter(prefix="/v1", tags=["search"])


def _check(body: SearchRequest, rt: Runtime, caller: Caller) -> None:
    caller.check_collection(body.collection)
    limit = rt.settings.api.max_question_chars
    if len(body.question) > limit:
        raise InvalidInput(
            f"the question is longer than {limit} characters (api.max_question_chars)"
        )


def _audit(
    caller: Caller,
    action: str,
    body: SearchRequest,
    document_ids: list[str],
    collection: str | None = None,
) -> None:
    question: dict[str, Any] = {"question": body.question} if caller.audit_questions else {}
    ids = list(dict.fromkeys(document_ids))
    collection = collection or body.collection
    caller.record(action, collection=collection, document_ids=ids, **question)


@router.post("/retrieve")
def retrieve(body: SearchRequest, rt: RuntimeDep, caller: QueryCaller) -> RetrieveResponse:
    """The best chunks for the question among those the caller may read."""
    _check(body, rt, caller)
    start = time.perf_counter()
    hits = rt.retriever.retrieve(body.collection, body.question, body, access=caller.access)
    elapsed = (time.perf_counter() - start) * 1000
    _audit(caller, "retrieve", body, [h.chunk.document_id for h in hits])
    return RetrieveResponse(hits=[Hit.of(h) for h in hits], retrieval_ms=elapsed)


@router.post(
    "/query",
    response_model=Answer,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "With stream: SSE."},
        **error_responses(502),
    },
)
async def query(body: QueryRequest, rt: RuntimeDep, request: Request, caller: QueryCaller) -> Any:
    """An answer with citations. With `"stream": true`, Server-Sent Events: `token` events
    (`{"text"}`, the model's raw text) or, with `"stream_mode": "verified"`, `verified` events
    (`{"text", "cited"}` to append: only sentences that passed verification, never taken back;
    `cited` with the markers of the citations each rests on), then one
    `answer` event (the checked answer, whose `revised` says whether it differs from the
    streamed text), or an `error` event."""
    _check(body, rt, caller)
    names = body.searched()
    for name in names[1:]:
        caller.check_collection(name)
    target: str | list[str] = names if len(names) > 1 else body.collection
    shown = ",".join(names)[:64]  # as the audit log and the scoreboard record it
    if body.history:  # a follow-up: asked with the latest questions it refers back to
        body = body.model_copy(update={"question": condense(body.question, body.history)})
    route, access = body.route_request(), caller.access
    if not body.stream:
        answer = await run_in_threadpool(
            lambda: rt.answerer.answer(target, body.question, body, route=route, access=access)
        )
        _audit(caller, "query", body, [c.document_id for c in answer.citations], shown)
        return await run_in_threadpool(rateable, rt, caller, shown, body.question, answer)
    # Retrieval and the choice of model happen now, so a bad request is still a plain 4xx.
    events = await run_in_threadpool(
        lambda: rt.answerer.stream(
            target,
            body.question,
            body,
            route=route,
            access=access,
            verified=body.stream_mode == "verified",
        )
    )
    return StreamingResponse(
        _server_sent_events(
            events,
            request,
            lambda a: _audit(caller, "query", body, a, shown),
            lambda a: rateable(rt, caller, shown, body.question, a),
        ),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


def rateable(rt: Runtime, caller: Caller, collection: str, question: str, answer: Answer) -> Answer:
    """The answer with the id POST /v1/feedback rates it by: one small row (no question text
    unless `auth.audit_questions`). Personal data masked for its model is audited by count."""
    route = answer.route
    answer_id = rt.scoreboard.record_answer(
        owner=rater(caller.principal),
        key_name=caller.principal.name,
        model=route.model if route else None,
        version=answer.model,
        collection=collection,
        question=question if caller.audit_questions else None,
    )
    if route is not None and route.masked:
        caller.record("pii.masked", collection=collection, target=answer_id, masked=route.masked)
    return answer.model_copy(update={"answer_id": answer_id})


async def _server_sent_events(
    events: AnswerStream,
    request: Request,
    cited: Callable[[list[str]], None],
    finish: Callable[[Answer], Answer] | None = None,
) -> AsyncIterator[str]:
    async with aclosing(relay(events, request)) as stream:
        async for event in stream:
            if isinstance(event, StreamFailed):
                yield frame("error", {"code": event.code, "message": event.message})
            elif isinstance(event, AnswerDelta):
                yield frame("token", {"text": event.text})
            elif isinstance(event, VerifiedDelta):
                yield frame("verified", {"text": event.text, "cited": event.cited})
            else:
                cited([c.document_id for c in event.answer.citations])
                final = event.answer
                if finish is not None:
                    final = await run_in_threadpool(finish, final)
                answer = final.model_dump(mode="json")
                yield frame("answer", answer | {"revised": event.revised})

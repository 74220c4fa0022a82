"""The OpenAI wire protocol over our documents, at /openai/v1, for tools written against the
OpenAI SDK and chat front-ends (Open WebUI, LibreChat, LobeChat).

A "model" names what to ask, not who answers: a collection or an alias for several, with an
optional routing policy (`handbook@confidential`); which model answered is in the response's
`system_fingerprint` and `rag.model`. Everything else is /v1/query's: the same key, scopes,
collection limits, document permissions, rate limits, audit entries, routing and verification.
The answer is the verified one, its citations both as numbered footnotes in the text and as a
structured `citations` field; a stream sends only verified text, never taken back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, QueryCaller
from api.deps import RuntimeDep
from api.errors import ERROR_RESPONSES
from api.openai_schemas import (
    ChatRequest,
    ChunkWriter,
    ModelCard,
    ModelPage,
    completion,
    extension,
    footnotes,
)
from api.routers.search import rateable
from api.sse import SSE_HEADERS, StreamFailed, relay
from rag.answering import AnswerDone, AnswerStream, VerifiedDelta
from rag.chat import condense
from rag.errors import InvalidInput, NotFoundError
from rag.factory import Runtime
from rag.generation.router import RouteRequest
from rag.models import Answer

router = APIRouter(prefix="/openai/v1", tags=["openai"], responses=ERROR_RESPONSES)


class ModelNotFound(NotFoundError):
    code = "model_not_found"


@dataclass(frozen=True)
class Target:
    collections: list[str]
    route: RouteRequest | None


def _resolve(model: str, rt: Runtime, caller: Caller) -> Target:
    """What a model name asks: worded the same whether the collection is missing or the key
    may not use it, so a name reveals nothing."""
    base, _, policy = model.partition("@")
    collections = rt.settings.openai_api.aliases.get(base, [base])
    try:
        for name in collections:
            caller.check_collection(name)
    except NotFoundError:
        collections = []
    known = rt.catalog.collection_names(collections) if base and collections else set()
    if not known or known != set(collections):
        raise ModelNotFound(f"model {model!r} not found; GET /openai/v1/models lists them")
    return Target(collections, RouteRequest(policy=policy) if policy else None)


def _model_names(rt: Runtime, caller: Caller) -> list[str]:
    """Each collection and alias the key may use, alone and with each routing policy."""
    visible = rt.catalog.collection_names(caller.principal.collections)
    aliases = rt.settings.openai_api.aliases
    bases = sorted(visible - set(aliases)) + sorted(
        a for a, names in aliases.items() if set(names) <= visible
    )
    policies = sorted(rt.router.catalog.policies)
    return [name for base in bases for name in (base, *(f"{base}@{p}" for p in policies))]


@router.get("/models", summary="What this key may ask: collections and aliases, with policies")
def list_models(rt: RuntimeDep, caller: QueryCaller) -> ModelPage:
    return ModelPage(data=[ModelCard(id=name) for name in _model_names(rt, caller)])


@router.get("/models/{model}", summary="One model name, if this key may use it")
def get_model(model: str, rt: RuntimeDep, caller: QueryCaller) -> ModelCard:
    _resolve(model, rt, caller)
    return ModelCard(id=model)


@router.post(
    "/chat/completions",
    summary="A verified answer from the documents, in OpenAI's chat format",
    responses={200: {"content": {"text/event-stream": {}}, "description": "With stream: SSE."}},
)
async def chat_completions(
    body: ChatRequest, rt: RuntimeDep, request: Request, caller: QueryCaller
) -> Any:
    """The last message is the question; the user's earlier ones condense a follow-up into a
    standalone question (as in Slack threads). System messages are not passed on: the model's
    instructions are ours, so documents and callers cannot loosen verification."""
    question, earlier = body.conversation()
    limit = rt.settings.api.max_question_chars
    if len(question) > limit:
        raise InvalidInput(
            f"the question is longer than {limit} characters (api.max_question_chars)"
        )
    target = _resolve(body.model, rt, caller)
    history = rt.settings.openai_api.history_turns
    standalone = condense(question, earlier[-history:] if history else [])

    collection = ",".join(target.collections)[:64]

    def finish(answer: Answer) -> Answer:
        """Audited as /v1/query is, and given the id POST /v1/feedback rates it by."""
        asked: dict[str, Any] = {"question": standalone} if caller.audit_questions else {}
        ids = list(dict.fromkeys(c.document_id for c in answer.citations))
        caller.record("query", collection=collection, document_ids=ids, via="openai", **asked)
        return rateable(rt, caller, collection, standalone, answer)

    if not body.stream:
        answer = await run_in_threadpool(
            lambda: rt.answerer.answer(
                target.collections, standalone, route=target.route, access=caller.access
            )
        )
        return completion(await run_in_threadpool(finish, answer), body.model)
    # Retrieval and the choice of model happen now, so a bad request is still a plain 4xx.
    events = await run_in_threadpool(
        lambda: rt.answerer.stream(
            target.collections,
            standalone,
            route=target.route,
            access=caller.access,
            verified=True,
        )
    )
    usage = body.stream_options is not None and body.stream_options.include_usage
    return StreamingResponse(
        _chunks(events, request, ChunkWriter(body.model), usage, finish),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


def _data(payload: dict[str, Any] | str) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n"


async def _chunks(
    events: AnswerStream,
    request: Request,
    writer: ChunkWriter,
    include_usage: bool,
    finish: Callable[[Answer], Answer],
) -> AsyncIterator[str]:
    """Verified text as it passes, then the footnotes, a last chunk carrying the citations and
    how we answered, the usage if asked, and `[DONE]`; a failure is an `error` object, which
    OpenAI's SDKs raise."""
    yield _data(writer.chunk({"role": "assistant", "content": ""}))
    shown = False
    async with aclosing(relay(events, request)) as stream:
        async for event in stream:
            if isinstance(event, StreamFailed):
                error = {"code": event.code, "message": event.message, "type": "server_error"}
                yield _data({"error": error | {"param": None}})
                return
            if isinstance(event, VerifiedDelta):
                shown = True
                yield _data(writer.chunk({"content": event.cited or event.text}))
                continue
            if not isinstance(event, AnswerDone):  # raw text is never sent here
                continue
            answer = await run_in_threadpool(finish, event.answer)  # audited, given its id
            text = "" if shown and answer.answerable else answer.answer
            if text and shown:
                text = "\n\n" + text
            if tail := text + footnotes(answer.citations):
                yield _data(writer.chunk({"content": tail}))
            last = writer.chunk({}, "stop", system_fingerprint=answer.model, **extension(answer))
            yield _data(last)
            if include_usage:
                yield _data(writer.usage(answer))
    yield _data("[DONE]")

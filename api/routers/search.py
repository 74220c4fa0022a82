from __future__ import annotations

import time

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.schemas import Hit, RetrieveResponse, SearchRequest
from rag.errors import InvalidInput
from rag.factory import Runtime
from rag.models import Answer

router = APIRouter(prefix="/v1", tags=["search"])


def _check(body: SearchRequest, rt: Runtime) -> None:
    limit = rt.settings.api.max_question_chars
    if len(body.question) > limit:
        raise InvalidInput(f"the question is longer than {limit} characters")


@router.post("/retrieve")
def retrieve(body: SearchRequest, rt: RuntimeDep) -> RetrieveResponse:
    _check(body, rt)
    start = time.perf_counter()
    hits = rt.retriever.retrieve(
        body.collection,
        body.question,
        top_k=body.top_k or rt.settings.retrieval.top_k,
        mode=body.mode or rt.settings.retrieval.mode,
        filters=body.filters,
    )
    elapsed = (time.perf_counter() - start) * 1000
    return RetrieveResponse(hits=[Hit.of(h) for h in hits], retrieval_ms=elapsed)


@router.post("/query")
def query(body: SearchRequest, rt: RuntimeDep) -> Answer:
    _check(body, rt)
    return rt.answerer.answer(
        body.collection,
        body.question,
        top_k=body.top_k or rt.settings.retrieval.top_k,
        mode=body.mode or rt.settings.retrieval.mode,
        filters=body.filters,
    )

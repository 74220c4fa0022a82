from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.auth import QueryCaller
from api.deps import RuntimeDep
from api.schemas import FeedbackRequest, FeedbackResponse
from rag.scoreboard import rater

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    summary="Rate an answer (+1/-1): it counts towards its model's measured quality",
)
async def feedback(body: FeedbackRequest, rt: RuntimeDep, caller: QueryCaller) -> FeedbackResponse:
    """A key rates only answers it received (another's is unknown: 404); its later rating of
    the same answer replaces the earlier one."""
    await run_in_threadpool(
        rt.scoreboard.rate, body.answer_id, rater(caller.principal), body.value, body.comment
    )
    caller.record("feedback", target=body.answer_id, value=body.value)
    return FeedbackResponse(answer_id=body.answer_id, value=body.value)

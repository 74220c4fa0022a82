"""The bot's Celery task: answer a question asked in Slack, on the chat queue (`rag worker -Q`
runs it apart from bulk ingestion)."""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from ingest.celery_app import CHAT_TASK, celery_app
from rag import tracing
from rag.factory import get_runtime
from rag.logs import log_context
from slackbot.app import bot_client
from slackbot.delivery import deliver


@celery_app.task(name=CHAT_TASK)  # type: ignore[untyped-decorator]
def chat_answer(
    turn_id: str, response_url: str | None = None, trace: dict[str, str] | None = None
) -> None:
    """Answer a question asked in Slack, in its thread (errors are told there, not raised)."""
    runtime = get_runtime()
    with (
        log_context(turn_id=turn_id),
        tracing.span(f"task {CHAT_TASK}", parent=trace, kind=SpanKind.CONSUMER),
    ):
        deliver(runtime.chat, bot_client(runtime.settings), turn_id, response_url)

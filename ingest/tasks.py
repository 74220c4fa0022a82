"""Celery tasks: ids in, a call into `rag`, nothing else."""

from __future__ import annotations

from typing import Any

from celery import Task
from opentelemetry.trace import SpanKind

from ingest.celery_app import celery_app
from rag import tracing
from rag.config import get_settings
from rag.errors import BackendError
from rag.factory import get_runtime
from rag.logs import log_context


class IngestTask(Task):  # type: ignore[misc]
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Retries are spent (or the error was not retryable): record it on the document."""
        job_id, document_id = args
        get_runtime().ingestor.fail(job_id, document_id, f"gave up after retries: {exc}")


@celery_app.task(  # type: ignore[untyped-decorator]
    base=IngestTask,
    name="rag.ingest_document",
    autoretry_for=(BackendError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=get_settings().worker.task_max_retries,
)
def ingest_document(
    job_id: str, document_id: str, trace: dict[str, str] | None = None
) -> dict[str, Any]:
    """`trace`: the submitting request's trace context, continued here."""
    with (
        log_context(job_id=job_id, document_id=document_id),
        tracing.span("task rag.ingest_document", parent=trace, kind=SpanKind.CONSUMER),
    ):
        outcome = get_runtime().ingestor.ingest(job_id, document_id)
    return {"status": outcome.status, "chunks": outcome.chunks, "error": outcome.error}


@celery_app.task(name="rag.chat_answer")  # type: ignore[untyped-decorator]
def chat_answer(
    turn_id: str, response_url: str | None = None, trace: dict[str, str] | None = None
) -> None:
    """Answer a question asked in Slack, in its thread (errors are told there, not raised)."""
    from slackbot.app import bot_client
    from slackbot.delivery import deliver

    runtime = get_runtime()
    with (
        log_context(turn_id=turn_id),
        tracing.span("task rag.chat_answer", parent=trace, kind=SpanKind.CONSUMER),
    ):
        deliver(runtime.chat, bot_client(runtime.settings), turn_id, response_url)

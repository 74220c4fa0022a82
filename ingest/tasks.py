"""The ingestion task: ids in, a call into `rag`, nothing else. (The Slack bot's task is in
`slackbot.tasks`.)"""

from __future__ import annotations

from typing import Any

from celery import Task
from opentelemetry.trace import SpanKind

from ingest.celery_app import INGEST_TASK, celery_app
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
    name=INGEST_TASK,
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
        tracing.span(f"task {INGEST_TASK}", parent=trace, kind=SpanKind.CONSUMER),
    ):
        outcome = get_runtime().ingestor.ingest(job_id, document_id)
    return {"status": outcome.status, "chunks": outcome.chunks, "error": outcome.error}

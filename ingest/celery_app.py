"""The Celery app. Run a worker with `rag worker` (needs QDRANT_URL) or inside `rag serve`."""

from __future__ import annotations

from celery import Celery

from rag.config import Settings, get_settings

# Task names, the one place they are spelt: senders and workers may be different processes.
INGEST_TASK = "rag.ingest_document"
CHAT_TASK = "rag.chat_answer"


def create_celery(settings: Settings) -> Celery:
    # The bot's task lives with the bot: this layer does not import it.
    app = Celery("rag", broker=settings.broker_url, include=["ingest.tasks", "slackbot.tasks"])
    queue = settings.worker.queue
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=queue,
        task_routes={
            INGEST_TASK: {"queue": queue},
            # Chat answers have their own queue: never behind a bulk ingestion.
            CHAT_TASK: {"queue": settings.slack.queue},
        },
        # A task is acknowledged only after it ran: a killed worker's task is redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis redelivers an unacknowledged task after this long. A backstop only: a crashed
        # worker's document is re-sent when its lease runs out (rag.jobs), and a duplicate
        # delivery of a running or finished document does nothing.
        broker_transport_options={"visibility_timeout": settings.worker.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


celery_app = create_celery(get_settings())

"""Sending recorded job items to the broker, and sending again what was lost.

The database is the source of truth (see `rag.jobs`): an upload is committed first, then
published. The relay repairs three kinds of loss:
- the broker was down: the item stays undispatched and is published when the broker is back;
- the broker lost its queue (Redis here keeps nothing on disk): items sent long ago, not
  started, while the queue is empty, are sent again;
- a worker died mid-document (SIGKILL, OOM, power): its lease runs out and the item is sent
  again, long before Redis's visibility timeout would redeliver the message.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery import Celery
from kombu.exceptions import ChannelError, OperationalError

from ingest.celery_app import INGEST_TASK
from rag import tracing
from rag.db.tables import utcnow
from rag.errors import BackendUnavailable
from rag.jobs import Jobs, WorkItem

log = logging.getLogger(__name__)


def queue_depths(app: Celery, queues: list[str]) -> dict[str, int]:
    """Tasks waiting in each queue (any broker: a passive declare counts them)."""
    depths = {}
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        for queue in queues:
            try:
                declared = conn.default_channel.queue_declare(queue=queue, passive=True)
                depths[queue] = int(declared.message_count)
            except ChannelError:  # the queue does not exist (yet): nothing is waiting in it
                depths[queue] = 0
    return depths


class Dispatcher:
    def __init__(
        self,
        app: Celery,
        jobs: Jobs,
        *,
        queue: str,
        redispatch_after_s: float,
        lease_s: float,
    ):
        self.app = app
        self.jobs = jobs
        self.queue = queue
        self.redispatch_after = timedelta(seconds=redispatch_after_s)
        self.lease_s = lease_s

    def _unreachable(self, exc: Exception) -> BackendUnavailable:
        url = self.app.connection_for_write().as_uri()  # as_uri() masks the password
        return BackendUnavailable(f"the broker at {url} is unreachable: {exc}", backend="broker")

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        except (OperationalError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def queue_depth(self) -> int:
        try:
            return queue_depths(self.app, [self.queue])[self.queue]
        except (OperationalError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def dispatch(self, items: list[WorkItem]) -> int:
        """Publish items; those published are marked. Raises if the broker is unreachable."""
        sent: list[WorkItem] = []
        try:
            for job_id, document_id in items:
                self.app.send_task(
                    INGEST_TASK,
                    args=[job_id, document_id],
                    kwargs={"trace": tracing.carrier()},
                    queue=self.queue,
                )
                sent.append((job_id, document_id))
        except (OperationalError, OSError) as exc:
            raise self._unreachable(exc) from exc
        finally:
            self.jobs.mark_dispatched(sent)
        return len(sent)

    def relay_once(self) -> int:
        if orphans := self.jobs.requeue_orphans(self.lease_s):
            log.warning("relay: %d document(s) lost their worker mid-way; sending again", orphans)
        stale_before = utcnow() - self.redispatch_after if self.queue_depth() == 0 else None
        items = self.jobs.undispatched(stale_before=stale_before)
        if items:
            log.info("relay: sending %d job item(s) the broker does not have", len(items))
        return self.dispatch(items) if items else 0


class Relay:
    """Runs `Dispatcher.relay_once` every `interval_s` seconds in a daemon thread."""

    def __init__(self, dispatcher: Dispatcher, interval_s: float = 15.0):
        self.dispatcher = dispatcher
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rag-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatcher.relay_once()
            except BackendUnavailable as exc:
                log.warning("relay: %s", exc.message)
            except Exception:
                log.exception("relay: unexpected error")
            self._stop.wait(self.interval_s)

"""The job-item state machine: every change of a job item's state is made here, and only here.

An item is one document's work in one job. Its states and what moves it:

    from               event                                       to         by
    (new) or any       submitted (again) or retried: `requeue`     queued     Jobs
    queued             submitted, same content indexed: `skip`     skipped    Jobs
    queued             job cancelled: `settle`                     skipped    Jobs
    running (expired)  its worker stopped renewing the lease       queued     relay
    queued             claimed, job paused (resume re-sends it)    queued     worker
    queued             claimed, job cancelled or item superseded   skipped    worker
    queued, running    claimed (running: after its lease expired)  parsing    worker
    running            a step boundary (`checkpoint`)              embedding  worker
    running            stopped at a boundary: paused               queued     worker
    running            stopped: cancelled or superseded            skipped    worker
    running            indexed (`finish`)                          done       worker
    running            failed for good                             failed     worker
    running            failed, will retry (`release`)              queued     worker
    queued, running    retries spent (`fail`)                      failed     worker

Running is parsing or embedding. `move` refuses anything else: a transition missing from
`TRANSITIONS` is a bug, raised as such. A worker holds a running item by its lease
(`heartbeat_at`, renewed by `ItemStates.lease`) and its token (the attempt number it claimed):
a later claim supersedes it, and every later write of the earlier worker is then ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session, joinedload

from rag.db.session import Database
from rag.db.tables import (
    FINISHED_ITEM_STATES,
    RUNNING_ITEM_STATES,
    DocumentRow,
    DocumentStatus,
    ItemStatus,
    JobItemRow,
    utcnow,
)

log = logging.getLogger(__name__)

# An item is read with its job, document and collection in one query: the worker reads it at
# every step boundary, and one round trip each for the rest added up per document.
_WITH_ALL = (
    joinedload(JobItemRow.job),
    joinedload(JobItemRow.document).joinedload(DocumentRow.collection),
)

_RUNNING = frozenset(RUNNING_ITEM_STATES)
_AFTER_RUNNING = _RUNNING | {ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED}
TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.QUEUED: frozenset(
        {ItemStatus.QUEUED, ItemStatus.PARSING, ItemStatus.SKIPPED, ItemStatus.FAILED}
    ),
    ItemStatus.PARSING: _AFTER_RUNNING | {ItemStatus.QUEUED},
    ItemStatus.EMBEDDING: _AFTER_RUNNING | {ItemStatus.QUEUED},
    ItemStatus.DONE: frozenset({ItemStatus.QUEUED}),
    ItemStatus.FAILED: frozenset({ItemStatus.QUEUED}),
    ItemStatus.SKIPPED: frozenset({ItemStatus.QUEUED}),
}


class IllegalTransition(RuntimeError):
    """A job item was asked to move along an edge the state machine does not have (a bug)."""


def move(item: JobItemRow, to: ItemStatus) -> None:
    """Set the item's state along an edge of `TRANSITIONS` (a new item may start anywhere)."""
    current = item.status
    if current is not None and to not in TRANSITIONS[ItemStatus(current)]:
        raise IllegalTransition(f"job item {item.job_id}/{item.document_id}: {current} -> {to}")
    item.status = to


def requeue(item: JobItemRow) -> None:
    """The item as if never tried: queued, not sent, no attempts, no error."""
    move(item, ItemStatus.QUEUED)
    item.error, item.attempts = None, 0
    item.dispatched_at = item.started_at = item.heartbeat_at = item.finished_at = None


def skip(item: JobItemRow, reason: str) -> None:
    """Nothing to do for this item (e.g. the same content is indexed already)."""
    move(item, ItemStatus.SKIPPED)
    item.finished_at, item.error = utcnow(), reason


def settle(item: JobItemRow, status: ItemStatus, error: str | None) -> None:
    """Finish an item that did not index its document; the document keeps any indexed version."""
    move(item, status)
    item.error, item.finished_at, item.heartbeat_at = error, utcnow(), None
    doc = item.document
    if doc is None or doc.content_hash != item.content_hash:
        return  # a newer upload owns the document's state
    if status is ItemStatus.FAILED:
        doc.status, doc.error = DocumentStatus.FAILED, error
    elif doc.indexed_version is not None:
        doc.status, doc.error = DocumentStatus.INDEXED, None
    else:
        doc.status, doc.error = DocumentStatus.CANCELLED, error


def requeue_expired(session: Session, lease_s: float) -> int:
    """Running items whose worker stopped renewing the lease go back to the queue, unsent."""
    expired = utcnow() - timedelta(seconds=lease_s)
    result = session.execute(
        update(JobItemRow)
        .where(
            JobItemRow.status.in_(RUNNING_ITEM_STATES),
            func.coalesce(JobItemRow.heartbeat_at, JobItemRow.started_at) < expired,
        )
        .values(
            status=ItemStatus.QUEUED,
            dispatched_at=None,
            heartbeat_at=None,
            error="its worker stopped while ingesting it; sent again",
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Outcome:
    status: str
    chunks: int = 0
    error: str | None = None
    seconds: float = 0.0
    code: str = ""  # a failure's error code (metrics)


@dataclass(frozen=True)
class Work:
    """A claimed item: what the worker needs of its document, and the claim's token."""

    job_id: str
    document_id: str
    token: int  # the item's attempt number when claimed: a later claim supersedes this one
    path: str
    source: str
    collection: str
    title: str
    metadata: dict[str, Any]
    access: list[str]
    content_hash: str
    version: int


class Stop(Exception):
    """The job was cancelled or paused, or another worker took the item over."""

    def __init__(self, reason: str):
        self.reason = reason


class ItemStates:
    """The worker's side of the machine: claim, lease, checkpoint, and how the work ends."""

    def __init__(self, db: Database, lease_s: float):
        self.db, self.lease_s = db, lease_s

    def claim(self, job_id: str, document_id: str) -> Outcome | Work:
        """Take the item (lease it), or say why there is nothing to do."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id), options=_WITH_ALL)
            if item is None:
                return Outcome(status="gone", error="job item no longer exists")
            if item.status in FINISHED_ITEM_STATES:
                return Outcome(status=item.status)
            if item.status in RUNNING_ITEM_STATES and self._lease_is_fresh(item):
                return Outcome(status="busy", error="another worker holds the lease")
            doc, job = item.document, item.job
            coll = doc.collection if doc is not None else None
            if doc is None or coll is None:
                return Outcome(status="gone", error="document deleted")
            if job.cancelled:
                settle(item, ItemStatus.SKIPPED, "cancelled")
                return Outcome(status=ItemStatus.SKIPPED, error="cancelled")
            if job.paused:
                move(item, ItemStatus.QUEUED)
                item.dispatched_at = None  # resume re-sends it
                return Outcome(status="paused")
            if doc.content_hash != item.content_hash:
                settle(item, ItemStatus.SKIPPED, "superseded by a newer upload")
                return Outcome(status=ItemStatus.SKIPPED, error=item.error)
            move(item, ItemStatus.PARSING)
            item.attempts += 1
            item.started_at = item.started_at or utcnow()
            item.heartbeat_at = utcnow()
            doc.status = DocumentStatus.PROCESSING
            return Work(
                job_id=job_id,
                document_id=document_id,
                token=item.attempts,
                path=doc.file_path,
                source=doc.source,
                collection=coll.name,
                title=doc.title,
                metadata=dict(doc.metadata_),
                access=list(doc.access),
                content_hash=doc.content_hash,
                version=doc.version,
            )

    def _lease_is_fresh(self, item: JobItemRow) -> bool:
        beat = item.heartbeat_at or item.started_at
        return beat is not None and utcnow() - beat < timedelta(seconds=self.lease_s)

    @contextmanager
    def lease(self, work: Work) -> Iterator[None]:
        """Renew the item's lease every quarter lease while the body runs."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_s / 4):
                try:
                    with self.db.session() as session:
                        item = self._held(session, work)
                        if item is not None:
                            item.heartbeat_at = utcnow()
                except Exception:  # the next renewal may work; a missed one is not fatal
                    log.warning("could not renew the lease of %s", work.source, exc_info=True)

        thread = threading.Thread(target=renew, name="rag-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def checkpoint(self, work: Work, status: ItemStatus) -> None:
        """A step boundary: raise `Stop` if the job was cancelled or paused or the item taken
        over or superseded; else record the step."""
        with self.db.session() as session:
            item = self._held(session, work)
            if item is None or item.status in FINISHED_ITEM_STATES:
                raise Stop("taken over")
            if item.job.cancelled:
                raise Stop("cancelled")
            if item.job.paused:
                raise Stop("paused")
            if item.document.version != work.version:
                raise Stop("superseded by a newer upload")
            move(item, status)

    def stop(self, work: Work, reason: str) -> Outcome:
        log.info("stopped %s: %s", work.source, reason)
        with self.db.session() as session:
            item = self._held(session, work)
            if item is None or reason == "taken over":
                return Outcome(status="gone", error=reason)
            if reason == "paused":
                move(item, ItemStatus.QUEUED)
                item.dispatched_at = item.heartbeat_at = None
                item.document.status = DocumentStatus.QUEUED
                return Outcome(status="paused")
            settle(item, ItemStatus.SKIPPED, reason)
        return Outcome(status=ItemStatus.SKIPPED, error=reason)

    def release(self, work: Work, error: str) -> None:
        """A retryable failure: back to the queue (the broker holds the delayed retry)."""
        with self.db.session() as session:
            item = self._held(session, work)
            if item is not None:
                move(item, ItemStatus.QUEUED)
                item.error, item.heartbeat_at, item.dispatched_at = error, None, utcnow()

    def fail(self, job_id: str, document_id: str, error: str) -> bool:
        """Retries are spent: the item fails (dead-letter list). False if it had finished."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
            if item is None or item.status in FINISHED_ITEM_STATES:
                return False
            settle(item, ItemStatus.FAILED, error)
            return True

    def finish(
        self,
        work: Work,
        status: ItemStatus,
        *,
        chunks: int = 0,
        error: str | None = None,
        code: str = "",
    ) -> Outcome:
        with self.db.session() as session:
            item = self._held(session, work)
            if item is None:
                return Outcome(status="gone", error="taken over by another worker")
            if status is not ItemStatus.DONE:
                settle(item, status, error)
                log.warning("document %s failed: %s", work.source, error)
                return Outcome(status=status, error=error, code=code)
            move(item, status)
            item.error, item.chunks = None, chunks
            item.finished_at, item.heartbeat_at = utcnow(), None
            doc = item.document
            if (doc.indexed_version or 0) <= work.version:
                doc.indexed_version, doc.indexed_hash = work.version, work.content_hash
                doc.chunk_count = chunks
            if doc.version == work.version:
                doc.status, doc.error = DocumentStatus.INDEXED, None
        return Outcome(status=status, chunks=chunks)

    @staticmethod
    def _held(session: Session, work: Work) -> JobItemRow | None:
        """The item, if this claim still holds it (no later claim superseded it)."""
        item = session.get(JobItemRow, (work.job_id, work.document_id), options=_WITH_ALL)
        return item if item is not None and item.attempts == work.token else None

"""One document's way into the index: parse → chunk → embed → write, with its state recorded.

`Ingestor.ingest` is safe to run twice (a redelivered task, a relay resend):
- a running item holds a lease (`heartbeat_at`, renewed by a thread); a second delivery while
  the lease is fresh does nothing, one after it expired takes over (the first worker died);
- chunk ids are derived from (document, version, index), so a rerun overwrites its own points;
- a changed document's new version is written next to the old one, then the old one deleted:
  readers see the old version until the new one is complete (`newest_version_only` hides the
  moment both exist), and never a gap.
Between steps the worker reads the job: a cancel or pause takes effect at the next boundary,
before anything is written to the index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from rag import metrics, tracing
from rag.catalog import Catalog
from rag.chunking import Chunker
from rag.db.tables import (
    FINISHED_ITEM_STATES,
    RUNNING_ITEM_STATES,
    DocumentRow,
    DocumentStatus,
    ItemStatus,
    JobItemRow,
    JobRow,
    utcnow,
)
from rag.embedding import Embedder
from rag.errors import BackendError, RagError, UnreadableDocument
from rag.jobs import settle
from rag.models import Element
from rag.sparse import Bm25Encoder
from rag.stores import VectorStore

log = logging.getLogger(__name__)

Parse = Callable[[Path, str], list[Element]]
# Chunks embedded between two checks for cancel/pause: a 500-page PDF stops within seconds.
EMBED_SLICE = 256


@dataclass
class Outcome:
    status: str
    chunks: int = 0
    error: str | None = None
    seconds: float = 0.0
    code: str = ""  # a failure's error code (metrics)


@dataclass(frozen=True)
class _Work:
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


class _Stop(Exception):
    """The job was cancelled or paused, or another worker took the item over."""

    def __init__(self, reason: str):
        self.reason = reason


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        parse: Parse,
        chunker: Chunker,
        embedder: Embedder,
        sparse: Bm25Encoder,
        store: VectorStore,
        *,
        lease_s: float = 60.0,
    ):
        self.catalog = catalog
        self.db = catalog.db
        self.parse = parse
        self.chunker = chunker
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.lease_s = lease_s

    def ingest(self, job_id: str, document_id: str) -> Outcome:
        started = time.perf_counter()
        work = self._claim(job_id, document_id)
        if isinstance(work, Outcome):
            return work
        with tracing.span("ingest.document", job_id=job_id, document_id=document_id):
            outcome = self._run(work)
        outcome.seconds = time.perf_counter() - started
        self._observe(job_id, outcome)
        if outcome.status == ItemStatus.DONE:
            log.info(
                "indexed %s (%s v%d): %d chunks in %.2fs",
                work.source,
                document_id,
                work.version,
                outcome.chunks,
                outcome.seconds,
            )
        return outcome

    def _run(self, work: _Work) -> Outcome:
        try:
            with self._lease(work):
                chunks = self._index(work)
        except _Stop as stop:
            return self._stop(work, stop.reason)
        except BackendError as exc:
            if exc.retryable:
                self._release(work, f"will retry: {exc.message}")
                raise
            return self._finish(work, ItemStatus.FAILED, error=exc.message, code=exc.code)
        except RagError as exc:
            return self._finish(work, ItemStatus.FAILED, error=exc.message, code=exc.code)
        except Exception as exc:  # a bug or an unexpected library error: record it, don't loop
            log.exception("ingesting document %s failed", work.document_id)
            error = f"internal error while ingesting: {type(exc).__name__}"
            return self._finish(work, ItemStatus.FAILED, error=error, code="internal_error")
        return self._finish(work, ItemStatus.DONE, chunks=chunks)

    def _observe(self, job_id: str, outcome: Outcome) -> None:
        """Metrics for a document that finished, and for its job if it was the last one."""
        if outcome.status not in FINISHED_ITEM_STATES:
            return
        metrics.observe_document(
            outcome.status, chunks=outcome.chunks, seconds=outcome.seconds, reason=outcome.code
        )
        with self.db.session() as session:
            job = session.get(JobRow, job_id)
            open_items = session.scalar(
                select(func.count())
                .select_from(JobItemRow)
                .where(
                    JobItemRow.job_id == job_id,
                    JobItemRow.status.not_in(FINISHED_ITEM_STATES),
                )
            )
            if job is not None and not open_items:
                metrics.JOB_DURATION.observe((utcnow() - job.created_at).total_seconds())

    def _index(self, work: _Work) -> int:
        elements = self.parse(Path(work.path), work.source)
        chunks = self.chunker.chunk(
            elements,
            document_id=work.document_id,
            collection=work.collection,
            source=work.source,
            title=work.title,
            metadata=work.metadata,
            version=work.version,
        )
        if not chunks:
            raise UnreadableDocument("no text found")
        for chunk in chunks:
            chunk.access = work.access
        texts = [chunk.embedding_text() for chunk in chunks]
        dense: list[list[float]] = []
        for start in range(0, len(texts), EMBED_SLICE):
            self._checkpoint(work, ItemStatus.EMBEDDING)
            dense += self.embedder.embed_documents(texts[start : start + EMBED_SLICE])
        sparse = [self.sparse.encode_document(text) for text in texts]
        self._checkpoint(work, ItemStatus.EMBEDDING)  # the last chance to stop before writing
        self.store.ensure_collection(work.collection, len(dense[0]))
        self.store.upsert(chunks, dense, sparse)
        self._sync_access(work)
        self.store.delete_document(work.collection, work.document_id, before_version=work.version)
        return len(chunks)

    def _sync_access(self, work: _Work) -> None:
        """Permissions changed while this document was being indexed: the change wrote the old
        chunks, so the new ones take the current list now."""
        with self.db.session() as session:
            doc = session.get(DocumentRow, work.document_id)
            current = list(doc.access) if doc is not None else work.access
        if current != work.access:
            self.store.set_access(work.collection, work.document_id, current)

    # State transitions ------------------------------------------------------------------

    def _claim(self, job_id: str, document_id: str) -> Outcome | _Work:
        """Take the item (lease it), or say why there is nothing to do."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
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
                settle(session, item, ItemStatus.SKIPPED, "cancelled")
                return Outcome(status=ItemStatus.SKIPPED, error="cancelled")
            if job.paused:
                item.status, item.dispatched_at = ItemStatus.QUEUED, None  # resume re-sends it
                return Outcome(status="paused")
            if doc.content_hash != item.content_hash:
                settle(session, item, ItemStatus.SKIPPED, "superseded by a newer upload")
                return Outcome(status=ItemStatus.SKIPPED, error=item.error)
            item.status, item.attempts = ItemStatus.PARSING, item.attempts + 1
            item.started_at = item.started_at or utcnow()
            item.heartbeat_at = utcnow()
            doc.status = DocumentStatus.PROCESSING
            return _Work(
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
    def _lease(self, work: _Work) -> Iterator[None]:
        """Renew the item's lease every quarter lease while the body runs."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_s / 4):
                try:
                    with self.db.session() as session:
                        item = session.get(JobItemRow, (work.job_id, work.document_id))
                        if item is not None and item.attempts == work.token:
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

    def _checkpoint(self, work: _Work, status: ItemStatus) -> None:
        """A step boundary: stop if the job was cancelled or paused or the item taken over."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (work.job_id, work.document_id))
            if item is None or item.attempts != work.token or item.status in FINISHED_ITEM_STATES:
                raise _Stop("taken over")
            if item.job.cancelled:
                raise _Stop("cancelled")
            if item.job.paused:
                raise _Stop("paused")
            if item.document.version != work.version:
                raise _Stop("superseded by a newer upload")
            item.status = status

    def _stop(self, work: _Work, reason: str) -> Outcome:
        log.info("stopped %s: %s", work.source, reason)
        with self.db.session() as session:
            item = session.get(JobItemRow, (work.job_id, work.document_id))
            if item is None or item.attempts != work.token or reason == "taken over":
                return Outcome(status="gone", error=reason)
            if reason == "paused":
                item.status, item.dispatched_at, item.heartbeat_at = ItemStatus.QUEUED, None, None
                item.document.status = DocumentStatus.QUEUED
                return Outcome(status="paused")
            settle(session, item, ItemStatus.SKIPPED, reason)
        return Outcome(status=ItemStatus.SKIPPED, error=reason)

    def _release(self, work: _Work, error: str) -> None:
        """A retryable failure: back to the queue (the broker holds the delayed retry)."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (work.job_id, work.document_id))
            if item is not None and item.attempts == work.token:
                item.status, item.error, item.heartbeat_at = ItemStatus.QUEUED, error, None
                item.dispatched_at = utcnow()

    def fail(self, job_id: str, document_id: str, error: str) -> Outcome:
        """Retries are spent: the document goes to the dead-letter list."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
            settled = item is not None and item.status not in FINISHED_ITEM_STATES
            if item is not None and settled:
                settle(session, item, ItemStatus.FAILED, error)
        log.warning("document %s failed: %s", document_id, error)
        outcome = Outcome(status=ItemStatus.FAILED, error=error, code="retries_exhausted")
        if settled:
            self._observe(job_id, outcome)
        return outcome

    def _finish(
        self,
        work: _Work,
        status: ItemStatus,
        *,
        chunks: int = 0,
        error: str | None = None,
        code: str = "",
    ) -> Outcome:
        with self.db.session() as session:
            item = session.get(JobItemRow, (work.job_id, work.document_id))
            if item is None or item.attempts != work.token:
                return Outcome(status="gone", error="taken over by another worker")
            if status is not ItemStatus.DONE:
                settle(session, item, status, error)
                log.warning("document %s failed: %s", work.source, error)
                return Outcome(status=status, error=error, code=code)
            item.status, item.error, item.chunks = status, None, chunks
            item.finished_at, item.heartbeat_at = utcnow(), None
            doc = item.document
            if (doc.indexed_version or 0) <= work.version:
                doc.indexed_version, doc.indexed_hash = work.version, work.content_hash
                doc.chunk_count = chunks
            if doc.version == work.version:
                doc.status, doc.error = DocumentStatus.INDEXED, None
        return Outcome(status=status, chunks=chunks)

"""One document's way into the index: parse → chunk → embed → write. Its job item's state is
`rag.job_items`' business: claimed, leased, checked at each step boundary, finished there.

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
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from rag import metrics, tracing
from rag.chunking import Chunker
from rag.collections import Catalog
from rag.db.tables import FINISHED_ITEM_STATES, DocumentRow, ItemStatus, JobItemRow, JobRow, utcnow
from rag.embedding import Embedder
from rag.errors import BackendError, RagError, UnreadableDocument
from rag.job_items import ItemStates, Outcome, Stop, Work
from rag.models import Element
from rag.sparse import Bm25Encoder
from rag.stores import VectorStore

log = logging.getLogger(__name__)

Parse = Callable[[Path, str], list[Element]]
# Chunks embedded between two checks for cancel/pause: a 500-page PDF stops within seconds.
EMBED_SLICE = 256


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
        self.items = ItemStates(self.db, lease_s)

    def ingest(self, job_id: str, document_id: str) -> Outcome:
        started = time.perf_counter()
        work = self.items.claim(job_id, document_id)
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

    def _run(self, work: Work) -> Outcome:
        items = self.items
        try:
            with items.lease(work):
                chunks = self._index(work)
        except Stop as stop:
            return items.stop(work, stop.reason)
        except BackendError as exc:
            if exc.retryable:
                items.release(work, f"will retry: {exc.message}")
                raise
            return items.finish(work, ItemStatus.FAILED, error=exc.message, code=exc.code)
        except RagError as exc:
            return items.finish(work, ItemStatus.FAILED, error=exc.message, code=exc.code)
        except Exception as exc:  # a bug or an unexpected library error: record it, don't loop
            log.exception("ingesting document %s failed", work.document_id)
            error = f"internal error while ingesting: {type(exc).__name__}"
            return items.finish(work, ItemStatus.FAILED, error=error, code="internal_error")
        return items.finish(work, ItemStatus.DONE, chunks=chunks)

    def fail(self, job_id: str, document_id: str, error: str) -> Outcome:
        """Retries are spent: the document goes to the dead-letter list."""
        settled = self.items.fail(job_id, document_id, error)
        log.warning("document %s failed: %s", document_id, error)
        outcome = Outcome(status=ItemStatus.FAILED, error=error, code="retries_exhausted")
        if settled:
            self._observe(job_id, outcome)
        return outcome

    def _observe(self, job_id: str, outcome: Outcome) -> None:
        """Metrics for a document that finished, and for its job if it was the last one."""
        if outcome.status not in FINISHED_ITEM_STATES:
            return
        metrics.observe_document(
            outcome.status, chunks=outcome.chunks, seconds=outcome.seconds, reason=outcome.code
        )
        open_items = (
            select(func.count())
            .select_from(JobItemRow)
            .where(JobItemRow.job_id == job_id, JobItemRow.status.not_in(FINISHED_ITEM_STATES))
            .scalar_subquery()
            .label("open_items")
        )
        with self.db.session() as session:
            job = session.execute(
                select(JobRow.created_at, open_items).where(JobRow.id == job_id)
            ).first()
        if job is not None and not job.open_items:
            metrics.JOB_DURATION.observe((utcnow() - job.created_at).total_seconds())

    def _index(self, work: Work) -> int:
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
            self.items.checkpoint(work, ItemStatus.EMBEDDING)
            dense += self.embedder.embed_documents(texts[start : start + EMBED_SLICE])
        sparse = [self.sparse.encode_document(text) for text in texts]
        self.items.checkpoint(work, ItemStatus.EMBEDDING)  # the last chance to stop before writing
        self.store.ensure_collection(work.collection, len(dense[0]))
        self.store.upsert(chunks, dense, sparse)
        self._sync_access(work)
        self.store.delete_document(work.collection, work.document_id, before_version=work.version)
        return len(chunks)

    def _sync_access(self, work: Work) -> None:
        """Permissions changed while this document was being indexed: the change wrote the old
        chunks, so the new ones take the current list now."""
        with self.db.session() as session:
            doc = session.get(DocumentRow, work.document_id)
            current = list(doc.access) if doc is not None else work.access
        if current != work.access:
            self.store.set_access(work.collection, work.document_id, current)

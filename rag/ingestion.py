"""One document's way into the index: parse → chunk → embed → upsert, with its state recorded.

`Ingestor.ingest` is idempotent: chunk ids are derived from (document, index), so running it
twice (a redelivered task, a relay resend) overwrites the same points and ends in the same state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.catalog import Catalog
from rag.chunking import Chunker
from rag.db.tables import CollectionRow, DocumentRow, DocumentStatus, ItemStatus, JobItemRow, utcnow
from rag.embedding import Embedder
from rag.errors import BackendError, RagError, UnreadableDocument
from rag.models import Element
from rag.sparse import Bm25Encoder
from rag.stores import VectorStore

log = logging.getLogger(__name__)

Parse = Callable[[Path, str], list[Element]]


@dataclass
class Outcome:
    status: str
    chunks: int = 0
    error: str | None = None
    seconds: float = 0.0


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        parse: Parse,
        chunker: Chunker,
        embedder: Embedder,
        sparse: Bm25Encoder,
        store: VectorStore,
    ):
        self.catalog = catalog
        self.db = catalog.db
        self.parse = parse
        self.chunker = chunker
        self.embedder = embedder
        self.sparse = sparse
        self.store = store

    def ingest(self, job_id: str, document_id: str) -> Outcome:
        started = time.perf_counter()
        claim = self._claim(job_id, document_id)
        if isinstance(claim, Outcome):
            return claim
        doc_path, filename, collection, title, metadata, content_hash = claim
        try:
            elements = self.parse(Path(doc_path), filename)
            chunks = self.chunker.chunk(
                elements,
                document_id=document_id,
                collection=collection,
                source=filename,
                title=title,
                metadata=metadata,
            )
            if not chunks:
                raise UnreadableDocument("no text found")
            texts = [chunk.embedding_text() for chunk in chunks]
            dense = self.embedder.embed_documents(texts)
            sparse = [self.sparse.encode_document(text) for text in texts]
            self.store.ensure_collection(collection, len(dense[0]))
            self.store.upsert(chunks, dense, sparse)
            # A shorter new version leaves a tail of old chunks: remove exactly that tail.
            self.store.delete_document(collection, document_id, from_index=len(chunks))
        except BackendError as exc:
            if exc.retryable:
                self._record_error(job_id, document_id, exc.message)
                raise
            return self._finish(job_id, document_id, ItemStatus.FAILED, error=exc.message)
        except RagError as exc:
            return self._finish(job_id, document_id, ItemStatus.FAILED, error=exc.message)
        except Exception as exc:  # a bug or an unexpected library error: record it, don't loop
            log.exception("ingesting document %s failed", document_id)
            error = f"internal error while ingesting: {type(exc).__name__}"
            return self._finish(job_id, document_id, ItemStatus.FAILED, error=error)
        outcome = self._finish(
            job_id, document_id, ItemStatus.DONE, chunks=len(chunks), content_hash=content_hash
        )
        outcome.seconds = time.perf_counter() - started
        log.info(
            "indexed document %s (%s): %d chunks in %.2fs",
            document_id,
            filename,
            len(chunks),
            outcome.seconds,
        )
        return outcome

    def _claim(
        self, job_id: str, document_id: str
    ) -> Outcome | tuple[str, str, str, str, dict[str, object], str]:
        """Mark the item as processing, or say why there is nothing to do."""
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
            if item is None:
                return Outcome(status="gone", error="job item no longer exists")
            if item.status in (ItemStatus.DONE, ItemStatus.SKIPPED, ItemStatus.FAILED):
                return Outcome(status=item.status)
            doc = session.get(DocumentRow, document_id)
            coll = session.get(CollectionRow, doc.collection_id) if doc else None
            if doc is None or coll is None:
                return Outcome(status="gone", error="document deleted")
            if item.job.cancelled:
                item.status, item.error, item.finished_at = (
                    ItemStatus.SKIPPED,
                    "cancelled",
                    utcnow(),
                )
                return Outcome(status=ItemStatus.SKIPPED, error="cancelled")
            if doc.content_hash != item.content_hash:
                item.status, item.finished_at = ItemStatus.SKIPPED, utcnow()
                item.error = "superseded by a newer upload"
                return Outcome(status=ItemStatus.SKIPPED, error=item.error)
            item.status, item.attempts = ItemStatus.PROCESSING, item.attempts + 1
            item.started_at = item.started_at or utcnow()
            doc.status = DocumentStatus.PROCESSING
            return (
                doc.file_path,
                doc.source,
                coll.name,
                doc.title,
                dict(doc.metadata_),
                doc.content_hash,
            )

    def fail(self, job_id: str, document_id: str, error: str) -> Outcome:
        return self._finish(job_id, document_id, ItemStatus.FAILED, error=error)

    def _record_error(self, job_id: str, document_id: str, error: str) -> None:
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
            if item is not None:
                item.error = f"will retry: {error}"

    def _finish(
        self,
        job_id: str,
        document_id: str,
        status: ItemStatus,
        *,
        chunks: int = 0,
        error: str | None = None,
        content_hash: str | None = None,
    ) -> Outcome:
        with self.db.session() as session:
            item = session.get(JobItemRow, (job_id, document_id))
            doc = session.get(DocumentRow, document_id)
            if item is not None:
                item.status, item.error, item.chunks = status, error, chunks
                item.finished_at = utcnow()
            if doc is not None:
                doc.error = error
                if status is ItemStatus.DONE:
                    doc.status, doc.chunk_count, doc.indexed_hash = (
                        DocumentStatus.INDEXED,
                        chunks,
                        content_hash,
                    )
                else:
                    doc.status = DocumentStatus.FAILED
        if error:
            log.warning("document %s failed: %s", document_id, error)
        return Outcome(status=status, chunks=chunks, error=error)

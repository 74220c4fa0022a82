"""Collections, documents and jobs: the bookkeeping around the vectors.

Uploads are recorded here before anything is sent to the queue (an outbox): a job item stays
`queued` with no `dispatched_at` until the broker has taken it, so a broker outage loses nothing
and `undispatched()` tells the relay what to send again.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from rag.db.session import Database
from rag.db.tables import (
    FINISHED_ITEM_STATES,
    CollectionRow,
    DocumentRow,
    DocumentStatus,
    ItemStatus,
    JobItemRow,
    JobRow,
    new_id,
    utcnow,
)
from rag.errors import ConflictError, InvalidInput, NotFoundError
from rag.filters import FieldType, merge_field_types
from rag.models import CollectionInfo, DocumentInfo, JobDocument, JobInfo
from rag.parsing import detect_format
from rag.stores import VectorStore

# A job's items and their documents in two extra queries, not one query per item.
_WITH_ITEMS = [selectinload(JobRow.items).selectinload(JobItemRow.document)]
COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass
class IncomingFile:
    """A file already streamed to disk by the caller, with its size and sha256."""

    path: Path
    filename: str
    size: int
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


@dataclass
class Submission:
    job: JobInfo
    to_dispatch: list[tuple[str, str]]  # (job_id, document_id)


class Catalog:
    def __init__(self, db: Database, store: VectorStore, uploads_dir: Path, embedding_model: str):
        self.db = db
        self.store = store
        self.uploads_dir = uploads_dir
        self.embedding_model = embedding_model

    # Collections ------------------------------------------------------------------------

    def create_collection(self, name: str, description: str, dimension: int) -> CollectionInfo:
        if not COLLECTION_NAME.match(name):
            raise InvalidInput(
                f"invalid collection name {name!r}: use 1-63 lower-case letters, digits, '-' "
                "or '_', starting with a letter or digit"
            )
        try:
            with self.db.session() as session:
                row = CollectionRow(
                    name=name,
                    description=description,
                    embedding_model=self.embedding_model,
                    dimension=dimension,
                )
                session.add(row)
                session.flush()
                info = _collection_info(row, 0)
        except IntegrityError as exc:
            raise ConflictError(f"collection {name!r} already exists") from exc
        self.store.ensure_collection(name, dimension)
        return info

    def list_collections(self) -> list[CollectionInfo]:
        with self.db.session() as session:
            counts = dict(
                session.execute(
                    select(DocumentRow.collection_id, func.count()).group_by(
                        DocumentRow.collection_id
                    )
                ).all()
            )
            rows = session.scalars(select(CollectionRow).order_by(CollectionRow.name))
            return [_collection_info(row, counts.get(row.id, 0)) for row in rows]

    def get_collection(self, name: str) -> CollectionInfo:
        with self.db.session() as session:
            row = _collection(session, name)
            count = session.scalar(
                select(func.count())
                .select_from(DocumentRow)
                .where(DocumentRow.collection_id == row.id)
            )
            return _collection_info(row, count or 0)

    def metadata_fields(self, name: str) -> dict[str, FieldType]:
        """The collection's filterable metadata keys; one row read, for every query."""
        with self.db.session() as session:
            return dict(_collection(session, name).metadata_fields or {})

    def delete_collection(self, name: str) -> None:
        with self.db.session() as session:
            row = _collection(session, name)
            collection_id = row.id
            session.delete(row)
        self.store.drop_collection(name)
        shutil.rmtree(self.uploads_dir / collection_id, ignore_errors=True)

    # Documents --------------------------------------------------------------------------

    def list_documents(
        self, collection: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DocumentInfo]:
        with self.db.session() as session:
            row = _collection(session, collection)
            query = select(DocumentRow).where(DocumentRow.collection_id == row.id)
            if status:
                query = query.where(DocumentRow.status == status)
            docs = session.scalars(query.order_by(DocumentRow.source).limit(limit).offset(offset))
            return [_document_info(doc, collection) for doc in docs]

    def get_document(self, collection: str, document_id: str) -> DocumentInfo:
        with self.db.session() as session:
            return _document_info(_document(session, collection, document_id), collection)

    def delete_document(self, collection: str, document_id: str) -> None:
        with self.db.session() as session:
            doc = _document(session, collection, document_id)
            folder = Path(doc.file_path).parent
            session.delete(doc)
        self.store.delete_document(collection, document_id)
        shutil.rmtree(folder, ignore_errors=True)

    # Jobs -------------------------------------------------------------------------------

    def submit(self, collection: str, files: list[IncomingFile]) -> Submission:
        """Record documents and a job. Nothing is dispatched here; see `Submission.to_dispatch`."""
        if not files:
            raise InvalidInput("no documents in the request")
        names = Counter(f.filename for f in files)
        if dupes := [n for n, c in names.items() if c > 1]:
            raise InvalidInput(f"the same file name appears twice in one request: {dupes}")
        formats = {f.filename: detect_format(f.filename) for f in files}  # 415 before any write
        with self.db.session() as session:
            coll = _collection(session, collection)
            job = JobRow(collection_id=coll.id)
            session.add(job)
            session.flush()
            to_dispatch: list[tuple[str, str]] = []
            for incoming in files:
                doc, changed = self._upsert_document(session, coll, incoming, formats)
                item = JobItemRow(job_id=job.id, document_id=doc.id, content_hash=incoming.sha256)
                if not changed:
                    item.status, item.error, item.finished_at = (
                        ItemStatus.SKIPPED,
                        "unchanged",
                        utcnow(),
                    )
                else:
                    to_dispatch.append((job.id, doc.id))
                session.add(item)
            fields = dict(coll.metadata_fields or {})
            for incoming in files:
                fields = merge_field_types(fields, incoming.metadata)
            new_fields = {k: v for k, v in fields.items() if k not in (coll.metadata_fields or {})}
            coll.metadata_fields = fields
            session.flush()
            session.refresh(job)
            submission = Submission(job=_job_info(job, collection), to_dispatch=to_dispatch)
        if new_fields:
            self.store.index_fields(collection, new_fields)
        return submission

    def _upsert_document(
        self, session: Session, coll: CollectionRow, incoming: IncomingFile, formats: dict[str, str]
    ) -> tuple[DocumentRow, bool]:
        doc = session.scalar(
            select(DocumentRow).where(
                DocumentRow.collection_id == coll.id, DocumentRow.source == incoming.filename
            )
        )
        unchanged = (
            doc is not None
            and doc.content_hash == incoming.sha256
            and doc.status
            in (DocumentStatus.INDEXED, DocumentStatus.QUEUED, DocumentStatus.PROCESSING)
        )
        if doc is not None and unchanged:
            incoming.path.unlink(missing_ok=True)
            return doc, False
        if doc is None:
            doc = DocumentRow(
                id=new_id(), collection_id=coll.id, source=incoming.filename, version=0
            )
            session.add(doc)
        if doc.content_hash != incoming.sha256:
            doc.version += 1
        target = self.uploads_dir / coll.id / doc.id / Path(incoming.filename).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(incoming.path, target)
        doc.title = incoming.title or Path(incoming.filename).stem
        doc.format = formats[incoming.filename]
        doc.content_hash = incoming.sha256
        doc.size_bytes = incoming.size
        doc.file_path = str(target)
        doc.status = DocumentStatus.QUEUED
        doc.error = None
        doc.metadata_ = incoming.metadata
        session.flush()
        return doc, True

    def mark_dispatched(self, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        with self.db.session() as session:
            for job_id, document_id in items:
                item = session.get(JobItemRow, (job_id, document_id))
                if item is not None:
                    item.dispatched_at = utcnow()

    def undispatched(self, *, stale_before: datetime | None = None) -> list[tuple[str, str]]:
        """Queued items the broker never took, and (if given) ones sent before `stale_before`."""
        with self.db.session() as session:
            lost: ColumnElement[bool] = JobItemRow.dispatched_at.is_(None)
            if stale_before is not None:
                lost = lost | (JobItemRow.dispatched_at < stale_before)
            rows = session.execute(
                select(JobItemRow.job_id, JobItemRow.document_id).where(
                    JobItemRow.status == ItemStatus.QUEUED, lost
                )
            )
            return [(job_id, document_id) for job_id, document_id in rows]

    def get_job(self, job_id: str) -> JobInfo:
        with self.db.session() as session:
            job = session.get(JobRow, job_id, options=_WITH_ITEMS)
            if job is None:
                raise NotFoundError(f"job {job_id!r} not found")
            coll = session.get(CollectionRow, job.collection_id)
            return _job_info(job, coll.name if coll else "")

    def list_jobs(self, *, collection: str | None = None, limit: int = 20) -> list[JobInfo]:
        with self.db.session() as session:
            query = select(JobRow, CollectionRow.name).join(CollectionRow).options(*_WITH_ITEMS)
            if collection:
                query = query.where(CollectionRow.name == collection)
            rows = session.execute(query.order_by(JobRow.created_at.desc()).limit(limit))
            return [_job_info(job, name) for job, name in rows]


def _collection(session: Session, name: str) -> CollectionRow:
    row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
    if row is None:
        raise NotFoundError(f"collection {name!r} not found")
    return row


def _document(session: Session, collection: str, document_id: str) -> DocumentRow:
    coll = _collection(session, collection)
    doc = session.get(DocumentRow, document_id)
    if doc is None or doc.collection_id != coll.id:
        raise NotFoundError(f"document {document_id!r} not found in collection {collection!r}")
    return doc


def _collection_info(row: CollectionRow, document_count: int) -> CollectionInfo:
    return CollectionInfo(
        name=row.name,
        description=row.description,
        embedding_model=row.embedding_model,
        document_count=document_count,
        metadata_fields=row.metadata_fields or {},
        created_at=row.created_at,
    )


def _document_info(doc: DocumentRow, collection: str) -> DocumentInfo:
    return DocumentInfo(
        id=doc.id,
        collection=collection,
        source=doc.source,
        title=doc.title,
        format=doc.format,
        status=doc.status,
        error=doc.error,
        chunk_count=doc.chunk_count,
        content_hash=doc.content_hash,
        size_bytes=doc.size_bytes,
        version=doc.version,
        metadata=doc.metadata_,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
    )


def _job_info(job: JobRow, collection: str) -> JobInfo:
    items = job.items
    counts = Counter(item.status for item in items)
    total = len(items)
    finished = sum(counts[s] for s in FINISHED_ITEM_STATES)
    if total and finished == total:
        failed = counts[ItemStatus.FAILED]
        status = "failed" if failed == total else "completed_with_errors" if failed else "succeeded"
    elif job.cancelled:
        status = "cancelled"
    else:
        status = "running" if counts[ItemStatus.PROCESSING] or finished else "queued"
    finished_times = [item.finished_at for item in items if item.finished_at is not None]
    return JobInfo(
        id=job.id,
        collection=collection,
        status=status,
        created_at=job.created_at,
        finished_at=max(finished_times) if total and finished == total and finished_times else None,
        counts={s.value: counts[s] for s in ItemStatus},
        progress=finished / total if total else 1.0,
        documents=[
            JobDocument(
                document_id=item.document_id,
                source=item.document.source,
                status=item.status,
                error=item.error,
                chunks=item.chunks,
                attempts=item.attempts,
            )
            for item in sorted(items, key=lambda i: i.document.source)
        ],
    )

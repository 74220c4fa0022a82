"""Ingestion jobs: the outbox of per-document work, its progress, and its controls.

The database is the source of truth. A job item is written before anything reaches the broker
and stays `queued` with no `dispatched_at` until the broker has it (`undispatched()` tells the
relay what to send again). A worker running an item holds a lease it renews (`heartbeat_at`);
an item whose lease ran out belonged to a worker that died, and `requeue_orphans()` sends it
again. Cancel, pause and retry only change rows here: workers read them at step boundaries.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from rag.access import EVERYONE, field_readers
from rag.collections import (
    Catalog,
    IncomingFile,
    collection_row,
    recount_field_readers,
)
from rag.db.tables import (
    FINISHED_ITEM_STATES,
    RUNNING_ITEM_STATES,
    CollectionRow,
    DocumentRow,
    DocumentStatus,
    ItemStatus,
    JobItemRow,
    JobRow,
    new_id,
    utcnow,
)
from rag.errors import ConflictError, InvalidInput, NotFoundError, RateLimited
from rag.filters import FieldType, check_metadata_keys, merge_field_types
from rag.job_items import requeue, requeue_expired, settle, skip
from rag.models import DeadLetter, JobDocument, JobInfo, Rejection
from rag.parsing import detect_format
from rag.staging import check_source

WorkItem = tuple[str, str]  # (job_id, document_id)


@dataclass
class AccessChange:
    """A document whose access list a submission changed (for the audit log)."""

    document_id: str
    source: str
    before: list[str]
    after: list[str]

    def __str__(self) -> str:
        return f"access changed from {', '.join(self.before)} to {', '.join(self.after)}"


@dataclass
class Submission:
    job: JobInfo
    to_dispatch: list[WorkItem]
    access_changes: list[AccessChange] = field(default_factory=list)


@dataclass
class DocumentPage:
    """Which of a job's documents `JobInfo.documents` lists."""

    status: str | None = None
    limit: int = 100
    offset: int = 0


class Jobs:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.db = catalog.db
        self.uploads_dir = catalog.uploads_dir

    # Creating ---------------------------------------------------------------------------

    def submit(
        self,
        collection: str,
        files: Sequence[IncomingFile],
        *,
        job_id: str | None = None,
        origin: str = "upload",
        rejected: Sequence[Rejection] = (),
        key_id: str | None = None,
        max_active_jobs: int | None = None,
    ) -> Submission:
        """Record documents in a new job (or add them to `job_id`). Nothing is dispatched here.

        A source already indexed with the same content is skipped; content already in the
        collection under another source with the same permissions is recorded as a duplicate of
        it, not indexed twice. A new job of `key_id` beyond its `max_active_jobs` unfinished ones
        is refused (429).

        A file without an access list (`IncomingFile.access` None) keeps its document's list: only
        a request that names one changes who may read an existing document, so re-ingesting a
        restricted file without its groups never publishes it. Every change is in
        `Submission.access_changes` and applied to the stored chunks at once.
        """
        if not files and not rejected:
            raise InvalidInput("no documents in the request")
        names = Counter(f.filename for f in files)
        if dupes := [n for n, c in names.items() if c > 1]:
            raise InvalidInput(f"the same file name appears twice in one request: {dupes}")
        for f in files:  # 422 before any write
            check_source(f.filename)
            check_metadata_keys(f.metadata)
        formats = {f.filename: detect_format(f.filename) for f in files}  # 415 before any write
        stale: list[str] = []  # documents that became duplicates: their own chunks go
        changes: list[AccessChange] = []
        carried: list[tuple[dict[str, Any], list[str]]] = []  # each document's (metadata, access)
        with self.db.session() as session:
            coll = collection_row(session, collection)
            if job_id is None and key_id is not None and max_active_jobs is not None:
                _check_active_jobs(session, key_id, max_active_jobs)
            self.catalog.check_embedder(coll)
            job = self._open_job(session, coll, job_id, origin)
            job.key_id = job.key_id or key_id
            job.rejected = [*job.rejected, *(r.model_dump() for r in rejected)]
            to_dispatch: list[WorkItem] = []
            for incoming in files:
                doc, action, change = self._record(
                    session, coll, incoming, formats[incoming.filename]
                )
                changes += [change] if change is not None else []
                carried.append((doc.metadata_, list(doc.access)))
                item = session.get(JobItemRow, (job.id, doc.id)) or JobItemRow(
                    job_id=job.id, document_id=doc.id
                )
                item.content_hash = incoming.sha256
                requeue(item)
                if action == "index":
                    to_dispatch.append((job.id, doc.id))
                else:
                    skip(item, action + (f"; {change}" if change is not None else ""))
                    if doc.duplicate_of and doc.indexed_version is not None:
                        stale.append(doc.id)
                        doc.indexed_version = doc.indexed_hash = None
                session.add(item)
            new_fields = _learn_fields(coll, files)
            # Who may see each field name: added for these documents, or, when a list changed
            # (it may have narrowed), counted again over the whole collection.
            if changes:
                recount_field_readers(session, coll)
            else:
                coll.metadata_field_access = field_readers(carried, coll.metadata_field_access)
            session.flush()
            info = _job_info(session, job, coll.name, DocumentPage())
        if new_fields:
            self.catalog.store.index_fields(collection, new_fields)
        for document_id in stale:
            self.catalog.store.delete_document(collection, document_id)
        for change in changes:  # the chunks indexed now follow at once, not after re-indexing
            self.catalog.store.set_access(collection, change.document_id, change.after)
        return Submission(job=info, to_dispatch=to_dispatch, access_changes=changes)

    def _open_job(
        self, session: Session, coll: CollectionRow, job_id: str | None, origin: str
    ) -> JobRow:
        if job_id is None:
            job = JobRow(collection_id=coll.id, origin=origin)
            session.add(job)
            session.flush()
            return job
        found = session.get(JobRow, job_id)
        if found is None or found.collection_id != coll.id:
            raise NotFoundError(f"job {job_id!r} not found in collection {coll.name!r}")
        job = found
        if job.cancelled:
            raise ConflictError(f"job {job_id!r} was cancelled; start a new one")
        return job

    def _record(
        self,
        session: Session,
        coll: CollectionRow,
        incoming: IncomingFile,
        fmt: str,
    ) -> tuple[DocumentRow, str, AccessChange | None]:
        """Create or update the source's document; say what to do (index, or why not) and how
        its access list changed, if it did."""
        doc = session.scalar(
            select(DocumentRow).where(
                DocumentRow.collection_id == coll.id, DocumentRow.source == incoming.filename
            )
        )
        before = list(doc.access) if doc is not None else None
        access = incoming.access or before or [EVERYONE]
        change = None
        if doc is not None and before != access:
            change = AccessChange(doc.id, doc.source, before or [EVERYONE], access)
        if doc is not None and doc.content_hash == incoming.sha256:
            pending = doc.status in (DocumentStatus.QUEUED, DocumentStatus.PROCESSING)
            if pending or doc.indexed_hash == incoming.sha256 or doc.duplicate_of:
                incoming.path.unlink(missing_ok=True)
                doc.access = access
                return doc, "unchanged", change
        twins = session.scalars(
            select(DocumentRow).where(
                DocumentRow.collection_id == coll.id,
                DocumentRow.content_hash == incoming.sha256,
                DocumentRow.source != incoming.filename,
                DocumentRow.duplicate_of.is_(None),
                DocumentRow.status.in_(
                    (DocumentStatus.QUEUED, DocumentStatus.PROCESSING, DocumentStatus.INDEXED)
                ),
            )
        )
        # Served through the twin's chunks, so only a twin readable by exactly the same callers.
        twin = next((t for t in twins if list(t.access) == access), None)
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
        doc.format, doc.content_hash, doc.size_bytes = fmt, incoming.sha256, incoming.size
        doc.file_path, doc.error, doc.metadata_ = str(target), None, incoming.metadata
        doc.access = access
        doc.duplicate_of = twin.id if twin else None
        doc.status = DocumentStatus.DUPLICATE if twin else DocumentStatus.QUEUED
        session.flush()
        return doc, f"same content as {twin.source}" if twin else "index", change

    def delete_document(self, collection: str, document_id: str) -> Submission | None:
        """Delete a document. If other sources had the same content (duplicates of it), the
        first of them takes its place: a job indexes it, and the rest now point at it."""
        with self.db.session() as session:  # read first: deleting sets their duplicate_of NULL
            twins = list(
                session.scalars(
                    select(DocumentRow.id)
                    .where(DocumentRow.duplicate_of == document_id)
                    .order_by(DocumentRow.source)
                )
            )
            gone = session.get(DocumentRow, document_id)
            source = gone.source if gone is not None else document_id
        self.catalog.delete_document(collection, document_id)  # 404s for a wrong collection
        if not twins:
            return None
        with self.db.session() as session:
            heir = session.get(DocumentRow, twins[0])
            if heir is None:
                return None
            heir.duplicate_of, heir.status, heir.error = None, DocumentStatus.QUEUED, None
            session.execute(
                update(DocumentRow)
                .where(DocumentRow.id.in_(twins[1:]))
                .values(duplicate_of=heir.id)
            )
            job = JobRow(collection_id=heir.collection_id, origin=f"replaces deleted {source}")
            session.add(job)
            session.flush()
            session.add(
                JobItemRow(job_id=job.id, document_id=heir.id, content_hash=heir.content_hash)
            )
            session.flush()
            info = _job_info(session, job, collection, DocumentPage())
        return Submission(job=info, to_dispatch=[(job.id, heir.id)])

    # Dispatch bookkeeping ---------------------------------------------------------------

    def mark_dispatched(self, items: Sequence[WorkItem]) -> None:
        if not items:
            return
        with self.db.session() as session:
            for job_id, document_id in items:
                item = session.get(JobItemRow, (job_id, document_id))
                if item is not None:
                    item.dispatched_at = utcnow()

    def undispatched(
        self, *, stale_before: datetime | None = None, job_id: str | None = None
    ) -> list[WorkItem]:
        """Queued items of live jobs (or of `job_id`) the broker never took, and (if given)
        ones sent before `stale_before`."""
        lost: ColumnElement[bool] = JobItemRow.dispatched_at.is_(None)
        if stale_before is not None:
            lost = lost | (JobItemRow.dispatched_at < stale_before)
        query = (
            select(JobItemRow.job_id, JobItemRow.document_id)
            .join(JobRow)
            .where(JobItemRow.status == ItemStatus.QUEUED, lost)
            .where(JobRow.paused.is_(False), JobRow.cancelled.is_(False))
        )
        if job_id is not None:
            query = query.where(JobItemRow.job_id == job_id)
        with self.db.session() as session:
            return [(job_id, document_id) for job_id, document_id in session.execute(query)]

    def requeue_orphans(self, lease_s: float) -> int:
        """Running items whose worker stopped renewing the lease go back to the queue."""
        with self.db.session() as session:
            return requeue_expired(session, lease_s)

    # Reading ----------------------------------------------------------------------------

    def get(self, job_id: str, page: DocumentPage | None = None) -> JobInfo:
        with self.db.session() as session:
            job = _job(session, job_id)
            coll = session.get(CollectionRow, job.collection_id)
            return _job_info(session, job, coll.name if coll else "", page or DocumentPage())

    def collection_of(self, job_id: str) -> str:
        """The job's collection (404 for an unknown job): what a caller's key is checked on."""
        with self.db.session() as session:
            name = session.scalar(
                select(CollectionRow.name).join(JobRow).where(JobRow.id == job_id)
            )
        if name is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return name

    def recent(
        self, *, collections: Collection[str] | None = None, limit: int = 20
    ) -> list[JobInfo]:
        """The latest jobs, of `collections` only if given."""
        with self.db.session() as session:
            query = select(JobRow, CollectionRow.name).join(CollectionRow)
            if collections is not None:
                query = query.where(CollectionRow.name.in_(collections))
            rows = session.execute(query.order_by(JobRow.created_at.desc()).limit(limit))
            return [_job_info(session, job, name, DocumentPage(limit=0)) for job, name in rows]

    def dead_letters(
        self, *, collections: Collection[str] | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Documents whose latest ingestion failed (and was not superseded since)."""
        query = (
            select(JobItemRow, DocumentRow, CollectionRow.name)
            .join(DocumentRow, JobItemRow.document_id == DocumentRow.id)
            .join(CollectionRow, DocumentRow.collection_id == CollectionRow.id)
            .where(*_dead(collections))
            .order_by(JobItemRow.finished_at.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            return [
                DeadLetter(
                    job_id=item.job_id,
                    document_id=doc.id,
                    collection=name,
                    source=doc.source,
                    error=item.error,
                    attempts=item.attempts,
                    failed_at=item.finished_at,
                )
                for item, doc, name in session.execute(query).tuples()
            ]

    # Controls ---------------------------------------------------------------------------

    def cancel(self, job_id: str) -> JobInfo:
        """Queued documents are dropped now; running ones stop at their next step boundary."""
        with self.db.session() as session:
            job = _job(session, job_id)
            job.cancelled, job.paused = True, False
            queued = select(JobItemRow).where(
                JobItemRow.job_id == job_id, JobItemRow.status == ItemStatus.QUEUED
            )
            for item in session.scalars(queued):
                settle(item, ItemStatus.SKIPPED, "cancelled")
        return self.get(job_id)

    def pause(self, job_id: str) -> JobInfo:
        with self.db.session() as session:
            job = _job(session, job_id)
            if job.cancelled:
                raise ConflictError(f"job {job_id!r} was cancelled")
            job.paused = True
        return self.get(job_id)

    def resume(self, job_id: str) -> Submission:
        with self.db.session() as session:
            _job(session, job_id).paused = False
        return Submission(self.get(job_id), self.undispatched(job_id=job_id))

    def retry_failed(
        self, *, job_id: str | None = None, collections: Collection[str] | None = None
    ) -> list[WorkItem]:
        """Queue the dead-lettered documents (of one job, or a collection, or all) again."""
        query = select(JobItemRow).join(DocumentRow).join(CollectionRow).where(*_dead(collections))
        if job_id is not None:
            query = query.where(JobItemRow.job_id == job_id)
        with self.db.session() as session:
            if job_id is not None:
                _job(session, job_id)  # 404 for an unknown job
            items = list(session.scalars(query))
            for item in items:
                requeue(item)
                item.document.status, item.document.error = DocumentStatus.QUEUED, None
                item.job.cancelled = item.job.paused = False
            return [(item.job_id, item.document_id) for item in items]

    def prune(self, job_id: str, prefix: str) -> int:
        """Delete the collection's documents under `prefix` that this job did not include:
        files removed from the folder since the last run."""
        if not prefix.endswith("/"):
            raise InvalidInput("prune needs a folder prefix ending in '/'")
        with self.db.session() as session:
            job = _job(session, job_id)
            coll = session.get(CollectionRow, job.collection_id)
            kept = select(JobItemRow.document_id).where(JobItemRow.job_id == job_id)
            gone = list(
                session.scalars(
                    select(DocumentRow.id).where(
                        DocumentRow.collection_id == job.collection_id,
                        DocumentRow.source.startswith(prefix, autoescape=True),
                        DocumentRow.id.not_in(kept),
                    )
                )
            )
            name = coll.name if coll else ""
        for document_id in gone:  # a duplicate's replacement job is sent by the relay
            self.delete_document(name, document_id)
        with self.db.session() as session:
            _job(session, job_id).pruned += len(gone)
        return len(gone)


def _learn_fields(coll: CollectionRow, files: Sequence[IncomingFile]) -> dict[str, FieldType]:
    """Record the metadata keys' types (a key seen with another type widens); return the keys
    that are new, which the store must index."""
    known = dict(coll.metadata_fields or {})
    fields = known
    for incoming in files:
        fields = merge_field_types(fields, incoming.metadata)
    coll.metadata_fields = fields
    return {k: v for k, v in fields.items() if k not in known}


def _dead(collections: Collection[str] | None) -> list[ColumnElement[bool]]:
    conditions = [
        JobItemRow.status == ItemStatus.FAILED,
        DocumentRow.status == DocumentStatus.FAILED,
        JobItemRow.content_hash == DocumentRow.content_hash,
    ]
    if collections is not None:
        conditions.append(CollectionRow.name.in_(collections))
    return conditions


def _check_active_jobs(session: Session, key_id: str, limit: int) -> None:
    active = session.scalar(
        select(func.count(func.distinct(JobRow.id)))
        .join(JobItemRow)
        .where(
            JobRow.key_id == key_id,
            JobRow.cancelled.is_(False),
            JobItemRow.status.not_in(FINISHED_ITEM_STATES),
        )
    )
    if (active or 0) >= limit:
        raise RateLimited(
            f"this key already has {active} unfinished jobs (limit auth.max_active_jobs={limit}); "
            "add files to one of them with job_id, or wait for one to finish",
            retry_after_s=30,
        )


def _job(session: Session, job_id: str) -> JobRow:
    job = session.get(JobRow, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id!r} not found")
    return job


def _job_info(session: Session, job: JobRow, collection: str, page: DocumentPage) -> JobInfo:
    stats = session.execute(
        select(
            JobItemRow.status,
            func.count(),
            func.min(JobItemRow.started_at),
            func.max(JobItemRow.finished_at),
        )
        .where(JobItemRow.job_id == job.id)
        .group_by(JobItemRow.status)
    ).all()
    counts = {s.value: 0 for s in ItemStatus}
    counts.update({status: n for status, n, _, _ in stats})
    total = sum(counts.values())
    finished = sum(counts[s] for s in FINISHED_ITEM_STATES)
    starts = [start for _, _, start, _ in stats if start is not None]
    ends = [end for _, _, _, end in stats if end is not None]
    worked = counts[ItemStatus.DONE] + counts[ItemStatus.FAILED]
    rate = eta = None
    if starts and worked:
        end = max(ends) if finished == total and ends else utcnow()
        rate = worked / max((end - min(starts)).total_seconds(), 1e-3)
        eta = (total - finished) / rate
    return JobInfo(
        id=job.id,
        collection=collection,
        status=_status(job, counts, total, finished),
        origin=job.origin,
        created_at=job.created_at,
        finished_at=max(ends) if total and finished == total and ends else None,
        counts=counts,
        total=total,
        progress=finished / total if total else 1.0,
        docs_per_s=rate,
        eta_s=eta,
        rejected=[Rejection(**r) for r in job.rejected],
        pruned=job.pruned,
        documents=_documents(session, job.id, page) if page.limit else [],
    )


def _status(job: JobRow, counts: dict[str, int], total: int, finished: int) -> str:
    if job.cancelled:
        return "cancelled"
    if total == finished:
        ok = counts[ItemStatus.DONE] + counts[ItemStatus.SKIPPED]
        if job.rejected or counts[ItemStatus.FAILED]:
            return "completed_with_errors" if ok else "failed"
        return "succeeded"
    if job.paused:
        return "paused"
    return "running" if finished or any(counts[s] for s in RUNNING_ITEM_STATES) else "queued"


def _documents(session: Session, job_id: str, page: DocumentPage) -> list[JobDocument]:
    query = (
        select(JobItemRow, DocumentRow.source)
        .join(DocumentRow, JobItemRow.document_id == DocumentRow.id)
        .where(JobItemRow.job_id == job_id)
    )
    if page.status:
        query = query.where(JobItemRow.status == page.status)
    rows = session.execute(
        query.order_by(DocumentRow.source).limit(page.limit).offset(page.offset)
    ).tuples()
    return [
        JobDocument(
            document_id=item.document_id,
            source=source,
            status=item.status,
            error=item.error,
            chunks=item.chunks,
            attempts=item.attempts,
        )
        for item, source in rows
    ]

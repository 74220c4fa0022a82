"""Intake: every way documents come in, as one sequence: stage → submit → publish → audit.

Uploads, text documents, server folders, manifests and archives are streamed into the staging
folder (bounded, hashed; a bad file rejected alone where the source allows), recorded as a job
(`Jobs.submit`: the database is the source of truth), then published to the workers through a
`Publisher`, and written to the audit log. One policy for a broker outage: rows committed are
accepted, and the relay publishes them when the broker is back (nothing is lost, no 503 for work
already recorded). A caller that wants to refuse work while the broker is down asks `ready()`
first, before anything is staged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from rag.access import split_access
from rag.audit import AuditLog
from rag.auth import Principal
from rag.collections import IncomingFile
from rag.config import Settings
from rag.errors import BackendUnavailable, InvalidInput
from rag.jobs import Jobs, Submission, WorkItem
from rag.models import JobInfo, Rejection
from rag.sources import (
    ArchiveLimits,
    Staged,
    extract_archive,
    is_archive,
    parse_manifest,
    stage_folder,
    stage_manifest,
)
from rag.sources.emails import expand_emails
from rag.staging import stage

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Sends recorded job items to the workers (the Celery dispatcher; in-process for eval)."""

    def ping(self) -> None:
        """Raise `BackendUnavailable` when nothing could be published now."""
        ...

    def dispatch(self, items: list[WorkItem]) -> int:
        """Publish `items` (marking them sent); raise `BackendUnavailable` if it cannot."""
        ...


@dataclass
class Upload:
    """One file to stage: its bytes, its source id, and what is stored with it."""

    stream: BinaryIO
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    access: list[str] | None = None  # None: a document already there keeps its list


@dataclass
class FolderSpec:
    path: Path
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    prune: bool = False


class Intake:
    def __init__(self, settings: Settings, jobs: Jobs, publisher: Publisher, audit: AuditLog):
        self.settings, self.jobs, self.publisher, self.audit = settings, jobs, publisher, audit
        self.staging_dir = settings.staging_dir

    def ready(self) -> None:
        """Raise `BackendUnavailable` (503) before accepting anything while the broker is down."""
        self.publisher.ping()

    # Staging ----------------------------------------------------------------------------

    def stage(self, uploads: Iterable[Upload]) -> list[IncomingFile]:
        """Stream each upload to the staging folder; if one fails, none is kept."""
        staged: list[IncomingFile] = []
        try:
            for upload in uploads:
                staged.append(
                    stage(
                        upload.stream,
                        upload.name,
                        self.staging_dir,
                        max_bytes=self.settings.max_upload_bytes,
                        metadata=upload.metadata,
                        title=upload.title,
                        access=upload.access,
                    )
                )
        except BaseException:
            _discard(staged)
            raise
        return staged

    def stage_folder(self, folder: FolderSpec) -> tuple[Staged, str | None]:
        """A server folder's files, and the prefix to prune under (None: no pruning)."""
        staged, prefix = stage_folder(
            folder.path,
            self.staging_dir,
            include=folder.include,
            exclude=folder.exclude,
            allowed_roots=self.settings.ingest.allowed_roots,
            max_bytes=self.settings.max_upload_bytes,
        )
        if folder.prune and not prefix:
            _discard(staged.files)
            raise InvalidInput("prune needs a subfolder of an allowed root, not the root itself")
        return staged, prefix if folder.prune else None

    def stage_manifest(self, lines: Iterable[str]) -> Staged:
        """JSONL entries (server paths or allowed URLs); a bad line is rejected alone."""
        entries, bad = parse_manifest(lines)
        staged = stage_manifest(
            entries,
            self.staging_dir,
            allowed_roots=self.settings.ingest.allowed_roots,
            allowed_hosts=self.settings.ingest.allowed_url_hosts,
            max_bytes=self.settings.max_upload_bytes,
        )
        staged.rejected[:0] = bad
        return staged

    def stage_archive(self, stream: BinaryIO, name: str) -> Staged:
        """A .zip/.tar(.gz) upload, unpacked member by member within the configured limits."""
        if not is_archive(name):
            raise InvalidInput(f"{name!r} is not a .zip, .tar.gz, .tgz or .tar archive")
        i = self.settings.ingest
        limits = ArchiveLimits(
            max_members=i.max_archive_members,
            max_member_bytes=self.settings.max_upload_bytes,
            max_total_bytes=int(i.max_archive_mb * 2**20),
            max_ratio=i.max_archive_ratio,
        )
        packed = stage(stream, name, self.staging_dir, max_bytes=limits.max_total_bytes)
        try:
            return extract_archive(packed.path, name, self.staging_dir, limits=limits)
        finally:
            packed.path.unlink(missing_ok=True)

    # Submitting -------------------------------------------------------------------------

    def submit(
        self,
        collection: str,
        files: list[IncomingFile],
        principal: Principal,
        *,
        origin: str = "upload",
        rejected: Sequence[Rejection] = (),
        job_id: str | None = None,
    ) -> JobInfo:
        """Record the staged files as a job (see `Jobs.submit`), publish it, audit it. E-mails
        are expanded here, whatever their source: attachments become documents of their own."""
        try:
            expanded = expand_emails(
                files, self.staging_dir, max_bytes=self.settings.max_upload_bytes
            )
            files, rejected = expanded.files, [*rejected, *expanded.rejected]
            submission = self.jobs.submit(
                collection,
                files,
                job_id=job_id,
                origin=origin,
                rejected=rejected,
                key_id=principal.key_id,
                max_active_jobs=self.settings.auth.max_active_jobs,
            )
        finally:
            _discard(files)  # moved into place on success; leftovers are garbage
        self.publish(submission.to_dispatch)
        self._audit(collection, submission, principal, files=len(files))
        return submission.job

    def submit_staged(
        self,
        collection: str,
        staged: Staged,
        principal: Principal,
        *,
        origin: str,
        metadata: dict[str, Any] | None = None,
        access: list[str] | None = None,
    ) -> JobInfo:
        """A source's files with the request's metadata and access list (a file's own win)."""
        for incoming in staged.files:
            incoming.metadata = {**(metadata or {}), **incoming.metadata}
            incoming.access = incoming.access or access
        return self.submit(
            collection, staged.files, principal, origin=origin, rejected=staged.rejected
        )

    def publish(self, items: list[WorkItem]) -> None:
        """Send recorded items; with the broker down they wait for the relay (never lost)."""
        if not items:
            return
        try:
            self.publisher.dispatch(items)
        except BackendUnavailable as exc:
            log.warning("%d item(s) recorded but not yet queued: %s", len(items), exc.message)

    def _audit(
        self, collection: str, submission: Submission, principal: Principal, files: int
    ) -> None:
        job, record = submission.job, self.audit.record_for
        record(principal, "ingest", collection=collection, target=job.id, status=202, files=files)
        for change in submission.access_changes:
            groups, users = split_access(change.after)
            record(
                principal,
                "permissions",
                collection=collection,
                target=change.document_id,
                job=job.id,
                source=change.source,
                allowed_groups=groups,
                allowed_users=users,
                previous=change.before,
            )


def _discard(files: Iterable[IncomingFile]) -> None:
    for incoming in files:
        incoming.path.unlink(missing_ok=True)

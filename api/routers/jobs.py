"""Bulk ingestion jobs: create them from a folder, files, a manifest or an archive; watch them
(JSON or Server-Sent Events); cancel, pause, resume, retry, prune; and the dead-letter list."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, IngestCaller
from api.deps import IntakeDep, KnownFormFields, RuntimeDep
from api.errors import error_responses
from api.forms import GroupsForm, MetadataForm, UsersForm, access_form, metadata_form
from api.schemas import MAX_OFFSET, Permissions, Strict
from rag.errors import NotFoundError
from rag.factory import Runtime
from rag.intake import FolderSpec
from rag.jobs import DocumentPage
from rag.models import DeadLetter, JobInfo
from rag.staging import safe_source

router = APIRouter(prefix="/v1", tags=["jobs"])
ACTIVE = ("queued", "running", "paused")
EVENT_INTERVAL_S = 0.5


class FolderSource(Strict):
    path: str = Field(description="A folder on the server, inside RAG_INGEST__ALLOWED_ROOTS.")
    include: list[str] = Field(default_factory=list, examples=[["**/*.pdf", "*.md"]])
    exclude: list[str] = Field(default_factory=list, examples=[["drafts/**"]])
    prune: bool = Field(
        default=False, description="Delete documents that were under this folder and are gone."
    )


class JobCreate(Permissions):
    """Exactly one source: a server folder, server files, or manifest entries. Permissions apply
    to every file (a manifest entry's own `allowed_groups`/`allowed_users` win)."""

    collection: str
    folder: FolderSource | None = None
    files: list[str] | None = Field(default=None, description="Server paths.")
    manifest: list[dict[str, Any]] | None = Field(
        default=None,
        description='Entries like {"path"|"url": ..., "id": ..., "metadata": {...}, "title": ..., '
        '"allowed_groups": [...], "allowed_users": [...]}; URLs only from '
        "RAG_INGEST__ALLOWED_URL_HOSTS.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored on every file.")

    @model_validator(mode="after")
    def _one_source(self) -> JobCreate:
        given = [s for s in (self.folder, self.files, self.manifest) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of folder, files or manifest")
        return self


class Retried(BaseModel):
    retried: int


class PruneRequest(Strict):
    prefix: str = Field(description="Folder prefix of the sources, ending in '/'.")


def _job_of(job_id: str, rt: Runtime, caller: Caller) -> str:
    """The job's id once the caller's key may see its collection (else 404, as if missing)."""
    try:
        caller.check_collection(rt.jobs.collection_of(job_id))
    except NotFoundError:
        raise NotFoundError(f"job {job_id!r} not found") from None
    return job_id


@router.get("/jobs")
def list_jobs(
    rt: RuntimeDep,
    caller: IngestCaller,
    collection: str | None = None,
    limit: int = Query(20, ge=1, le=200),
) -> list[JobInfo]:
    return rt.jobs.recent(collections=caller.principal.visible(collection), limit=limit)


@router.post(
    "/jobs",
    status_code=202,
    summary="Start a job from server files or a manifest",
    responses=error_responses(415),
)
def create_job(body: JobCreate, rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller) -> JobInfo:
    caller.check_collection(body.collection)
    rt.catalog.get_collection(body.collection)
    intake.ready()
    prune_prefix = None
    if body.folder is not None:
        folder = body.folder
        spec = FolderSpec(Path(folder.path), folder.include, folder.exclude, folder.prune)
        staged, prune_prefix = intake.stage_folder(spec)
        origin = f"folder {folder.path}"
    elif body.manifest is not None:
        staged, origin = intake.stage_manifest(json.dumps(e) for e in body.manifest), "manifest"
    else:
        staged = intake.stage_manifest(json.dumps({"path": f}) for f in body.files or [])
        origin = "files"
    job = intake.submit_staged(
        body.collection,
        staged,
        caller.principal,
        origin=origin,
        metadata=body.metadata,
        access=body.given_access(),
    )
    if prune_prefix is not None:
        rt.jobs.prune(job.id, prune_prefix)
        job = rt.jobs.get(job.id)
    return job


@router.post(
    "/jobs/archive",
    status_code=202,
    summary="Start a job from a .zip or .tar.gz",
    responses=error_responses(415),
    dependencies=[KnownFormFields],
)
def create_archive_job(
    rt: RuntimeDep,
    intake: IntakeDep,
    caller: IngestCaller,
    collection: Annotated[str, Form()],
    archive: Annotated[UploadFile, File(description=".zip, .tar.gz, .tgz or .tar")],
    metadata: MetadataForm = None,
    allowed_groups: GroupsForm = None,
    allowed_users: UsersForm = None,
) -> JobInfo:
    caller.check_collection(collection)
    rt.catalog.get_collection(collection)
    access = access_form(allowed_groups, allowed_users)
    name = safe_source(archive.filename)
    meta = metadata_form(metadata)
    intake.ready()
    staged = intake.stage_archive(archive.file, name)
    return intake.submit_staged(
        collection, staged, caller.principal, origin=f"archive {name}", metadata=meta, access=access
    )


@router.get("/jobs/{job_id}")
def get_job(
    job_id: str,
    rt: RuntimeDep,
    caller: IngestCaller,
    documents_status: Annotated[
        str | None, Query(description="Only documents in this state, e.g. failed.")
    ] = None,
    documents_limit: Annotated[int, Query(ge=0, le=10_000)] = 1000,
    documents_offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobInfo:
    page = DocumentPage(documents_status, documents_limit, documents_offset)
    return rt.jobs.get(_job_of(job_id, rt, caller), page)


def _visible_job(job_id: str, rt: RuntimeDep, caller: IngestCaller) -> str:
    """A dependency: 404 before the stream starts, as for any other route."""
    return _job_of(job_id, rt, caller)


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Progress as Server-Sent Events",
)
async def job_events(
    job_id: Annotated[str, Depends(_visible_job)], rt: RuntimeDep
) -> AsyncIterator[ServerSentEvent]:
    """`progress` events (the job without its documents) whenever counts change, then one
    `done` event when the job has finished or was cancelled. (FastAPI's SSE support sends the
    keep-alive comments and stops when the client goes away.)"""
    summary, last = DocumentPage(limit=0), None
    while True:
        job = await run_in_threadpool(rt.jobs.get, job_id, summary)
        data = job.model_dump(mode="json", exclude={"documents"})
        if job.status not in ACTIVE:
            yield ServerSentEvent(event="done", data=data)
            return
        if (job.status, job.counts) != last:
            last = (job.status, job.counts)
            yield ServerSentEvent(event="progress", data=data)
        await anyio.sleep(EVENT_INTERVAL_S)


@router.delete("/jobs/{job_id}", summary="Cancel: queued documents dropped, running ones stop")
def cancel_job(job_id: str, rt: RuntimeDep, caller: IngestCaller) -> JobInfo:
    job = rt.jobs.cancel(_job_of(job_id, rt, caller))
    caller.record("job.cancel", collection=job.collection, target=job_id)
    return job


@router.post("/jobs/{job_id}/pause", responses=error_responses(409))
def pause_job(job_id: str, rt: RuntimeDep, caller: IngestCaller) -> JobInfo:
    return rt.jobs.pause(_job_of(job_id, rt, caller))


@router.post("/jobs/{job_id}/resume", responses=error_responses(409))
def resume_job(job_id: str, rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller) -> JobInfo:
    resumed = rt.jobs.resume(_job_of(job_id, rt, caller))
    intake.publish(resumed.to_dispatch)
    return rt.jobs.get(job_id)


@router.post("/jobs/{job_id}/retry", summary="Send the job's failed documents again")
def retry_job(job_id: str, rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller) -> JobInfo:
    intake.publish(rt.jobs.retry_failed(job_id=_job_of(job_id, rt, caller)))
    return rt.jobs.get(job_id)


@router.post("/jobs/{job_id}/prune", summary="Delete documents under a folder this job left out")
def prune_job(job_id: str, body: PruneRequest, rt: RuntimeDep, caller: IngestCaller) -> JobInfo:
    rt.jobs.prune(_job_of(job_id, rt, caller), body.prefix)
    job = rt.jobs.get(job_id)
    caller.record("job.prune", collection=job.collection, target=job_id, prefix=body.prefix)
    return job


@router.get("/dead-letter", summary="Documents whose ingestion failed for good")
def dead_letter(
    rt: RuntimeDep,
    caller: IngestCaller,
    collection: str | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> list[DeadLetter]:
    return rt.jobs.dead_letters(collections=caller.principal.visible(collection), limit=limit)


@router.post("/dead-letter/retry", summary="Send every dead-lettered document again")
def retry_dead_letter(
    rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller, collection: str | None = None
) -> Retried:
    items = rt.jobs.retry_failed(collections=caller.principal.visible(collection))
    intake.publish(items)
    return Retried(retried=len(items))

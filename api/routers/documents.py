from __future__ import annotations

import io
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from api.auth import Caller, IngestCaller
from api.deps import DispatcherDep, KnownFormFields, RuntimeDep
from api.errors import error_responses
from api.schemas import MAX_OFFSET, Permissions, TextDocuments
from ingest.dispatch import Dispatcher
from rag.access import document_access, split_access
from rag.catalog import IncomingFile
from rag.errors import BackendUnavailable, InvalidInput
from rag.factory import Runtime
from rag.models import DocumentInfo, JobInfo
from rag.parsing import detect_format
from rag.staging import safe_source, stage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/collections/{collection}/documents", tags=["documents"])


def submit(
    rt: Runtime,
    dispatcher: Dispatcher,
    caller: Caller,
    collection: str,
    staged: list[IncomingFile],
    **options: Any,
) -> JobInfo:
    """Record the staged files as a job (see `Jobs.submit` for `options`), then queue them."""
    try:
        submission = rt.jobs.submit(
            collection,
            staged,
            key_id=caller.principal.key_id,
            max_active_jobs=rt.settings.auth.max_active_jobs,
            **options,
        )
    finally:
        for incoming in staged:  # moved into place on success; leftovers are garbage
            incoming.path.unlink(missing_ok=True)
    try:
        dispatcher.dispatch(submission.to_dispatch)
    except BackendUnavailable as exc:
        # Recorded already: the relay sends it when the broker is back. Nothing is lost.
        log.warning("job %s accepted but not yet queued: %s", submission.job.id, exc.message)
    job = submission.job
    caller.record("ingest", collection=collection, target=job.id, status=202, files=len(staged))
    for change in submission.access_changes:
        groups, users = split_access(change.after)
        caller.record(
            "permissions",
            collection=collection,
            target=change.document_id,
            job=job.id,
            source=change.source,
            allowed_groups=groups,
            allowed_users=users,
            previous=change.before,
        )
    return job


def access_form(groups: str | None, users: str | None) -> list[str] | None:
    """Comma-separated form fields → the stored access list; None when neither is given (a
    document already in the collection keeps its own)."""

    def names(raw: str | None) -> list[str]:
        return [n for n in (raw or "").split(",") if n.strip()]

    if not names(groups) and not names(users):
        return None
    return document_access(names(groups), names(users))


GroupsForm = Annotated[
    str | None, Form(description="Comma-separated groups that may read these files.")
]
UsersForm = Annotated[str | None, Form(description="Comma-separated users that may read them.")]


def metadata_form(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object")
    return value


@router.post(
    "",
    status_code=202,
    summary="Upload files; ingestion runs as a job",
    responses=error_responses(415),
    dependencies=[KnownFormFields],
)
def upload_documents(
    collection: str,
    rt: RuntimeDep,
    dispatcher: DispatcherDep,
    caller: IngestCaller,
    files: Annotated[
        list[UploadFile],
        File(description="One or more documents; a file name may hold folders: a/b/c.pdf"),
    ],
    metadata: Annotated[str | None, Form(description="JSON object stored on every file")] = None,
    job_id: Annotated[
        str | None, Query(description="Add these files to this job instead of a new one.")
    ] = None,
    allowed_groups: GroupsForm = None,
    allowed_users: UsersForm = None,
) -> JobInfo:
    """New files are readable by everyone unless `allowed_groups`/`allowed_users` name who may;
    a file already in the collection keeps its access list unless they are given."""
    rt.catalog.get_collection(collection)
    meta = metadata_form(metadata)
    access = access_form(allowed_groups, allowed_users)
    names = [safe_source(f.filename) for f in files]
    for name in names:
        detect_format(name)  # 415 before a byte is written
    dispatcher.ping()  # 503 before accepting anything if the queue is down
    staged: list[IncomingFile] = []
    try:
        for upload, name in zip(files, names, strict=True):
            staged.append(
                stage(
                    upload.file,
                    name,
                    rt.settings.uploads_dir / ".staging",
                    max_bytes=rt.settings.max_upload_bytes,
                    metadata=meta,
                    access=access,
                )
            )
    except BaseException:
        for incoming in staged:
            incoming.path.unlink(missing_ok=True)
        raise
    return submit(rt, dispatcher, caller, collection, staged, job_id=job_id)


@router.post(
    "/text",
    status_code=202,
    summary="Add documents given as JSON text",
    responses=error_responses(415),
)
def add_text_documents(
    collection: str,
    body: TextDocuments,
    rt: RuntimeDep,
    dispatcher: DispatcherDep,
    caller: IngestCaller,
) -> JobInfo:
    rt.catalog.get_collection(collection)
    dispatcher.ping()
    staged = []
    for doc in body.documents:
        suffix = ".md" if doc.format == "markdown" else ".txt"
        name = doc.source if doc.source.lower().endswith((".md", ".txt")) else doc.source + suffix
        staged.append(
            stage(
                io.BytesIO(doc.text.encode()),
                name,
                rt.settings.uploads_dir / ".staging",
                max_bytes=rt.settings.max_upload_bytes,
                metadata=doc.metadata,
                title=doc.title,
                access=doc.given_access(),
            )
        )
    return submit(rt, dispatcher, caller, collection, staged)


@router.get("")
def list_documents(
    collection: str,
    rt: RuntimeDep,
    _caller: IngestCaller,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[DocumentInfo]:
    return rt.catalog.list_documents(collection, status=status, limit=limit, offset=offset)


@router.get("/{document_id}")
def get_document(
    collection: str, document_id: str, rt: RuntimeDep, _caller: IngestCaller
) -> DocumentInfo:
    return rt.catalog.get_document(collection, document_id)


@router.put("/{document_id}/permissions", summary="Change who may read a document")
def set_permissions(
    collection: str, document_id: str, body: Permissions, rt: RuntimeDep, caller: IngestCaller
) -> DocumentInfo:
    """Applies to its chunks in place (no re-parsing or re-embedding)."""
    info = rt.catalog.set_access(collection, document_id, body.access())
    caller.record(
        "permissions",
        collection=collection,
        target=document_id,
        allowed_groups=info.allowed_groups,
        allowed_users=info.allowed_users,
    )
    return info


@router.delete("/{document_id}", status_code=204)
def delete_document(
    collection: str,
    document_id: str,
    rt: RuntimeDep,
    dispatcher: DispatcherDep,
    caller: IngestCaller,
) -> Response:
    """Its vectors and file go too; a duplicate of it (same content) is indexed in its place."""
    replacement = rt.jobs.delete_document(collection, document_id)
    caller.record("document.delete", collection=collection, target=document_id, status=204)
    if replacement is not None:
        try:
            dispatcher.dispatch(replacement.to_dispatch)
        except BackendUnavailable as exc:  # recorded: the relay sends it when the broker is back
            log.warning("replacement job %s not yet queued: %s", replacement.job.id, exc.message)
    return Response(status_code=204)

from __future__ import annotations

import io
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from api.deps import DispatcherDep, RuntimeDep
from api.schemas import TextDocuments
from ingest.dispatch import Dispatcher
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
    collection: str,
    staged: list[IncomingFile],
    **options: Any,
) -> JobInfo:
    """Record the staged files as a job (see `Jobs.submit` for `options`), then queue them."""
    try:
        submission = rt.jobs.submit(collection, staged, **options)
    finally:
        for incoming in staged:  # moved into place on success; leftovers are garbage
            incoming.path.unlink(missing_ok=True)
    try:
        dispatcher.dispatch(submission.to_dispatch)
    except BackendUnavailable as exc:
        # Recorded already: the relay sends it when the broker is back. Nothing is lost.
        log.warning("job %s accepted but not yet queued: %s", submission.job.id, exc.message)
    return submission.job


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


@router.post("", status_code=202, summary="Upload files; ingestion runs as a job")
def upload_documents(
    collection: str,
    rt: RuntimeDep,
    dispatcher: DispatcherDep,
    files: Annotated[
        list[UploadFile],
        File(description="One or more documents; a file name may hold folders: a/b/c.pdf"),
    ],
    metadata: Annotated[str | None, Form(description="JSON object stored on every file")] = None,
    job_id: Annotated[
        str | None, Query(description="Add these files to this job instead of a new one.")
    ] = None,
) -> JobInfo:
    rt.catalog.get_collection(collection)
    meta = metadata_form(metadata)
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
                )
            )
    except BaseException:
        for incoming in staged:
            incoming.path.unlink(missing_ok=True)
        raise
    return submit(rt, dispatcher, collection, staged, job_id=job_id)


@router.post("/text", status_code=202, summary="Add documents given as JSON text")
def add_text_documents(
    collection: str, body: TextDocuments, rt: RuntimeDep, dispatcher: DispatcherDep
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
            )
        )
    return submit(rt, dispatcher, collection, staged)


@router.get("")
def list_documents(
    collection: str,
    rt: RuntimeDep,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[DocumentInfo]:
    return rt.catalog.list_documents(collection, status=status, limit=limit, offset=offset)


@router.get("/{document_id}")
def get_document(collection: str, document_id: str, rt: RuntimeDep) -> DocumentInfo:
    return rt.catalog.get_document(collection, document_id)


@router.delete("/{document_id}", status_code=204)
def delete_document(
    collection: str, document_id: str, rt: RuntimeDep, dispatcher: DispatcherDep
) -> Response:
    """Its vectors and file go too; a duplicate of it (same content) is indexed in its place."""
    replacement = rt.jobs.delete_document(collection, document_id)
    if replacement is not None:
        try:
            dispatcher.dispatch(replacement.to_dispatch)
        except BackendUnavailable as exc:  # recorded: the relay sends it when the broker is back
            log.warning("replacement job %s not yet queued: %s", replacement.job.id, exc.message)
    return Response(status_code=204)

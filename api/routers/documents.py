"""Documents of a collection: upload files or JSON text (ingested as a job), list, read, change
who may read them, delete; and, for readers, a document's text."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Response, UploadFile

from api.auth import IngestCaller, QueryCaller
from api.deps import IntakeDep, KnownFormFields, RuntimeDep
from api.errors import error_responses
from api.forms import GroupsForm, MetadataForm, UsersForm, access_form, metadata_form
from api.schemas import MAX_OFFSET, DocumentText, Permissions, TextDocuments
from rag.chunking import readable_text
from rag.collections import document_not_found
from rag.errors import InvalidInput, UnsupportedDocument
from rag.formats.pdf_render import render_page
from rag.intake import Upload
from rag.models import DocumentInfo, JobInfo, Rejection
from rag.parsing import detect_format
from rag.staging import safe_source

router = APIRouter(prefix="/v1/collections/{collection}/documents", tags=["documents"])


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
    intake: IntakeDep,
    caller: IngestCaller,
    files: Annotated[
        list[UploadFile],
        File(description="One or more documents; a file name may hold folders: a/b/c.pdf"),
    ],
    metadata: MetadataForm = None,
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
    named = [(f, safe_source(f.filename)) for f in files]
    supported, rejected = _supported(named)
    intake.ready()  # 503 before accepting anything if the queue is down
    staged = intake.stage(
        Upload(f.file, name, metadata=meta, access=access) for f, name in supported
    )
    return intake.submit(collection, staged, caller.principal, job_id=job_id, rejected=rejected)


def _supported(
    named: list[tuple[UploadFile, str]],
) -> tuple[list[tuple[UploadFile, str]], list[Rejection]]:
    """The files of a supported type, and the others as the job's `rejected` with the reason:
    a folder with a few odd files still gets in. 415 (before a byte is written) only when no
    file is supported."""
    supported, rejected, refusals = [], [], []
    for upload, name in named:
        try:
            detect_format(name)
            supported.append((upload, name))
        except UnsupportedDocument as exc:
            rejected.append(Rejection(name=name, reason=exc.message))
            refusals.append(exc)
    if not supported:
        if len(refusals) == 1:
            raise refusals[0]
        raise UnsupportedDocument(
            f"none of the {len(refusals)} files is of a supported type; {refusals[0].message}"
        )
    return supported, rejected


@router.post(
    "/text",
    status_code=202,
    summary="Add documents given as JSON text",
    responses=error_responses(415),
)
def add_text_documents(
    collection: str, body: TextDocuments, rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller
) -> JobInfo:
    rt.catalog.get_collection(collection)
    intake.ready()
    staged = intake.stage(
        Upload(
            io.BytesIO(doc.text.encode()),
            doc.file_name(),
            metadata=doc.metadata,
            title=doc.title,
            access=doc.given_access(),
        )
        for doc in body.documents
    )
    return intake.submit(collection, staged, caller.principal)


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


@router.get(
    "/{document_id}/text",
    summary="A document's text, for a caller who may read it",
    response_model=DocumentText,
)
def get_document_text(
    collection: str, document_id: str, rt: RuntimeDep, caller: QueryCaller
) -> DocumentText:
    """Assembled from the chunks the caller may read, filtered in the vector store as search
    is: a document the caller may read none of is reported exactly as a missing one."""
    info = rt.catalog.get_document(collection, document_id)
    chunks = rt.store.document_chunks(collection, document_id, access=caller.access)
    if not chunks:  # worded as a missing one: nothing to tell them apart
        raise document_not_found(collection, document_id)
    caller.record("document.read", collection=collection, target=document_id)
    return DocumentText(
        id=info.id,
        collection=collection,
        source=info.source,
        title=info.title,
        version=chunks[0].version,
        metadata=info.metadata,
        chunk_count=len(chunks),
        text=readable_text(chunks),
    )


@router.get(
    "/{document_id}/pages/{page}",
    summary="A page of a PDF as PNG, a passage highlighted, for a caller who may read it",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def get_page(
    collection: str,
    document_id: str,
    page: Annotated[int, Path(ge=1, le=100_000)],
    rt: RuntimeDep,
    caller: QueryCaller,
    chunk_id: Annotated[str | None, Query(max_length=64)] = None,
    dpi: Annotated[int, Query(ge=36, le=200)] = 110,
) -> Response:
    """The page as the document shows it (what a citation's `page` points at); with `chunk_id`
    (a citation's), that chunk's words are highlighted where they appear on the page."""
    info, path = rt.catalog.document_file(collection, document_id)
    chunks = rt.store.document_chunks(collection, document_id, access=caller.access)
    if not chunks:  # worded as a missing one, as for its text
        raise document_not_found(collection, document_id)
    if info.format != "pdf":
        raise InvalidInput(f"document {document_id!r} is a {info.format} file, not a PDF")
    passage = next((c.text for c in chunks if c.id == chunk_id), "")
    png = render_page(path, page, passage, dpi)
    caller.record("document.read", collection=collection, target=document_id, page=page)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


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
    collection: str, document_id: str, rt: RuntimeDep, intake: IntakeDep, caller: IngestCaller
) -> Response:
    """Its vectors and file go too; a duplicate of it (same content) is indexed in its place."""
    replacement = rt.jobs.delete_document(collection, document_id)
    caller.record("document.delete", collection=collection, target=document_id, status=204)
    if replacement is not None:
        intake.publish(replacement.to_dispatch)
    return Response(status_code=204)

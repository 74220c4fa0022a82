"""Collections and documents: the bookkeeping around the vectors (jobs are in `rag.jobs`)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rag.db.session import Database
from rag.db.tables import CollectionRow, DocumentRow
from rag.errors import ConflictError, InvalidInput, NotFoundError
from rag.filters import FieldType
from rag.models import CollectionInfo, DocumentInfo
from rag.stores import VectorStore

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
            row = collection_row(session, name)
            count = session.scalar(
                select(func.count())
                .select_from(DocumentRow)
                .where(DocumentRow.collection_id == row.id)
            )
            return _collection_info(row, count or 0)

    def metadata_fields(self, name: str) -> dict[str, FieldType]:
        """The collection's filterable metadata keys; one row read, for every query."""
        with self.db.session() as session:
            return dict(collection_row(session, name).metadata_fields or {})

    def delete_collection(self, name: str) -> None:
        with self.db.session() as session:
            row = collection_row(session, name)
            collection_id = row.id
            session.delete(row)
        self.store.drop_collection(name)
        shutil.rmtree(self.uploads_dir / collection_id, ignore_errors=True)

    # Documents --------------------------------------------------------------------------

    def list_documents(
        self, collection: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DocumentInfo]:
        with self.db.session() as session:
            row = collection_row(session, collection)
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


def collection_row(session: Session, name: str) -> CollectionRow:
    row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
    if row is None:
        raise NotFoundError(f"collection {name!r} not found")
    return row


def _document(session: Session, collection: str, document_id: str) -> DocumentRow:
    coll = collection_row(session, collection)
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
        duplicate_of=doc.duplicate_of,
        metadata=doc.metadata_,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
    )

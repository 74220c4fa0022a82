"""Collections and documents: the bookkeeping around the vectors (jobs are in `rag.jobs`)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rag.access import EVERYONE, field_readers, split_access, visible_fields
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
    access: list[str] | None = None  # rag.access tokens; None = not given (everyone)


def base_model(name: str) -> str:
    """An embedding model's name without its precision: `…-L6-v2#int8` → `…-L6-v2`."""
    return name.partition("#")[0]


class Catalog:
    def __init__(self, db: Database, store: VectorStore, uploads_dir: Path, embedding_model: str):
        self.db = db
        self.store = store
        self.uploads_dir = uploads_dir
        self.embedding_model = embedding_model

    # Collections ------------------------------------------------------------------------

    def create_collection(self, name: str, description: str, dimension: int) -> CollectionInfo:
        if not COLLECTION_NAME.fullmatch(name):  # `$` alone would take a final "\n"
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
                info = _collection_info(row, 0, None)
        except IntegrityError as exc:
            raise ConflictError(f"collection {name!r} already exists") from exc
        self.store.ensure_collection(name, dimension)
        return info

    def list_collections(
        self, names: Collection[str] | None = None, access: Sequence[str] | None = None
    ) -> list[CollectionInfo]:
        """Every collection, or those of `names` (a key's); counting only documents readable
        with `access` tokens when given, and listing only the metadata fields such documents
        carry (neither counts nor field names may reveal what a caller cannot read)."""
        with self.db.session() as session:
            query = select(CollectionRow).order_by(CollectionRow.name)
            if names is not None:
                query = query.where(CollectionRow.name.in_(names))
            rows = list(session.scalars(query))
            counts = _document_counts(session, [r.id for r in rows], access)
            return [_collection_info(row, counts.get(row.id, 0), access) for row in rows]

    def collection_names(self, names: Collection[str] | None = None) -> set[str]:
        """The collections that exist (of `names`, when given): names only, nothing counted."""
        with self.db.session() as session:
            query = select(CollectionRow.name)
            if names is not None:
                query = query.where(CollectionRow.name.in_(names))
            return set(session.scalars(query))

    def get_collection(self, name: str, access: Sequence[str] | None = None) -> CollectionInfo:
        with self.db.session() as session:
            row = collection_row(session, name)
            count = _document_counts(session, [row.id], access).get(row.id, 0)
            return _collection_info(row, count, access)

    def upgrade_store(self) -> int:
        """Every collection's vectors brought up to this version (see `VectorStore.upgrade`)."""
        return sum(self.store.upgrade(name) for name in self.collection_names())

    def metadata_fields(
        self, name: str, access: Sequence[str] | None = None
    ) -> dict[str, FieldType]:
        """The collection's filterable metadata keys, those a caller with `access` tokens may
        know of when given; one row read, for every query."""
        with self.db.session() as session:
            row = collection_row(session, name)
            self.check_embedder(row)
            return _visible_fields(row, access)

    def check_embedder(self, row: CollectionRow) -> None:
        """Vectors of two embedders do not compare: a collection embedded by another model
        than this service's is refused for search and ingestion, with what to do about it.
        The same model at another precision (`…#int8`) is not another model: its vectors are
        within cosine 0.99, and SciFact nDCG@10 with fp32 documents and int8 questions, or the
        reverse, matched either alone (0.647-0.648 against 0.645, dense)."""
        if base_model(row.embedding_model) != base_model(self.embedding_model):
            raise ConflictError(
                f"collection {row.name!r} was embedded with {row.embedding_model}, and this "
                f"service embeds with {self.embedding_model}: set RAG_EMBEDDING__MODEL back, or "
                "ingest its documents again into a new collection (docs/operations.md, Upgrades)"
            )

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

    def set_access(self, collection: str, document_id: str, access: list[str]) -> DocumentInfo:
        """New permissions for a document: the catalog first, then its chunks' payload (the
        ingestor re-applies the list if it is writing a new version meanwhile)."""
        with self.db.session() as session:
            doc = _document(session, collection, document_id)
            doc.access = access
            info = _document_info(doc, collection)
            recount_field_readers(session, doc.collection)
        self.store.set_access(collection, document_id, access)
        return info

    def document_file(self, collection: str, document_id: str) -> tuple[DocumentInfo, Path]:
        """A document and where its uploaded file is kept."""
        with self.db.session() as session:
            doc = _document(session, collection, document_id)
            return _document_info(doc, collection), Path(doc.file_path)

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


def document_not_found(collection: str, document_id: str) -> NotFoundError:
    """The one wording of a missing document, also for one a caller may not read."""
    return NotFoundError(f"document {document_id!r} not found in collection {collection!r}")


def _document(session: Session, collection: str, document_id: str) -> DocumentRow:
    coll = collection_row(session, collection)
    doc = session.get(DocumentRow, document_id)
    if doc is None or doc.collection_id != coll.id:
        raise document_not_found(collection, document_id)
    return doc


def recount_field_readers(session: Session, coll: CollectionRow) -> None:
    """Who may see each metadata key, from the collection's documents as they are now: a key
    stops showing to callers who can no longer read any document carrying it. (Uploads only
    add to it; a deletion does not recount: it reveals nothing to anyone, and a prune would
    recount once per file.)"""
    coll.metadata_field_access = field_readers(_metadata_and_access(session, coll))


def _metadata_and_access(
    session: Session, coll: CollectionRow
) -> Iterable[tuple[dict[str, Any], list[str]]]:
    query = select(DocumentRow.metadata_, DocumentRow.access)
    return session.execute(query.where(DocumentRow.collection_id == coll.id)).tuples()


def _document_counts(
    session: Session, collection_ids: list[str], access: Sequence[str] | None
) -> dict[str, int]:
    where = DocumentRow.collection_id.in_(collection_ids)
    if access is None:
        query = select(DocumentRow.collection_id, func.count()).where(where)
        return dict(session.execute(query.group_by(DocumentRow.collection_id)).tuples().all())
    tokens = set(access)
    counts: Counter[str] = Counter()
    for collection_id, readers in session.execute(
        select(DocumentRow.collection_id, DocumentRow.access).where(where)
    ).tuples():
        if tokens.intersection(readers or [EVERYONE]):
            counts[collection_id] += 1
    return dict(counts)


def _visible_fields(row: CollectionRow, access: Sequence[str] | None) -> dict[str, FieldType]:
    return visible_fields(row.metadata_fields or {}, row.metadata_field_access or {}, access)


def _collection_info(
    row: CollectionRow, document_count: int, access: Sequence[str] | None
) -> CollectionInfo:
    return CollectionInfo(
        name=row.name,
        description=row.description,
        embedding_model=row.embedding_model,
        document_count=document_count,
        metadata_fields=_visible_fields(row, access),
        created_at=row.created_at,
    )


def _document_info(doc: DocumentRow, collection: str) -> DocumentInfo:
    groups, users = split_access(doc.access or [EVERYONE])
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
        allowed_groups=groups,
        allowed_users=users,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
    )

"""SQLAlchemy 2 tables. Vectors live in Qdrant; everything needed to rebuild them lives here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Same content as another document of the collection (`duplicate_of`): stored, not re-indexed.
    DUPLICATE = "duplicate"


class ItemStatus(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


RUNNING_ITEM_STATES = (ItemStatus.PARSING, ItemStatus.EMBEDDING)
FINISHED_ITEM_STATES = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class CollectionRow(Base):
    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    embedding_model: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[int]
    # Metadata key → filter type (rag.filters.FieldType), learnt from uploads.
    metadata_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    documents: Mapped[list[DocumentRow]] = relationship(
        back_populates="collection", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    file_path: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(default=0)
    indexed_hash: Mapped[str | None] = mapped_column(String(64))
    # The version whose chunks are in the index (readers see exactly one version per document).
    indexed_version: Mapped[int | None]
    duplicate_of: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    collection: Mapped[CollectionRow] = relationship(back_populates="documents")


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled: Mapped[bool] = mapped_column(default=False)
    paused: Mapped[bool] = mapped_column(default=False)
    # What the job was made from ("upload", "folder docs/", "archive x.zip", "manifest").
    origin: Mapped[str] = mapped_column(String(1024), default="upload")
    # Inputs that never became documents (unsupported type, unsafe archive member...): name+reason.
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    pruned: Mapped[int] = mapped_column(default=0)

    items: Mapped[list[JobItemRow]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True
    )


class JobItemRow(Base):
    """One document's task inside a job: the outbox row that survives a broker restart."""

    __tablename__ = "job_items"
    __table_args__ = (Index("ix_job_items_status", "status"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    chunks: Mapped[int] = mapped_column(default=0)
    dispatched_at: Mapped[datetime | None]
    # Renewed by the worker while it runs the item; a stale lease means the worker died.
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    job: Mapped[JobRow] = relationship(back_populates="items")
    document: Mapped[DocumentRow] = relationship()

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
    # Metadata key → access tokens of the documents carrying it: who may see the key's name.
    metadata_field_access: Mapped[dict[str, Any]] = mapped_column(default=dict)
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
    # Who may retrieve it: "*" (everyone), "group:<name>", "user:<id>" (rag.access).
    access: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["*"])
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
    # The API key that started it (concurrent-job limits, audit); None from the CLI or a relay.
    key_id: Mapped[str | None] = mapped_column(String(36), index=True)

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


class ApiKeyRow(Base):
    """An API key. Only the SHA-256 of its secret is stored; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the key's public prefix
    name: Mapped[str] = mapped_column(String(128), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # Collections it may use; None = all of them.
    collections: Mapped[list[str] | None] = mapped_column(JSON)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # May act for an end user named in the request (a chat bot): that user's groups apply.
    delegate: Mapped[bool] = mapped_column(default=False)
    query_per_minute: Mapped[float | None]
    ingest_per_minute: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class UiSessionRow(Base):
    """A web UI sign-in: the browser's cookie is a random token, stored here only as its
    SHA-256; it names the key it signed in with, which is checked again on every request."""

    __tablename__ = "ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    key_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_key_at", "key_name", "at"),
        Index("ix_audit_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    key_name: Mapped[str | None] = mapped_column(String(128))
    user: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[int]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ChatTurnRow(Base):
    """A question asked in a chat thread, and the answer the bot gave."""

    __tablename__ = "chat_turns"
    __table_args__ = (Index("ix_chat_turns_thread", "platform", "channel", "thread", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The platform's id of the event that asked (Slack's event_id): a retried delivery is known.
    event_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    team: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    # The thread's root message; None until the bot posts one (a slash command's answer).
    thread: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(64))
    direct: Mapped[bool] = mapped_column(default=False)  # a direct message: only the asker reads
    question: Mapped[str] = mapped_column(Text)
    standalone: Mapped[str | None] = mapped_column(Text)  # the question condensed with the thread
    status: Mapped[str] = mapped_column(String(16), default="pending")  # answered, failed
    reply: Mapped[str | None] = mapped_column(String(64))  # the bot's message (its ts)
    answer: Mapped[str | None] = mapped_column(Text)
    answerable: Mapped[bool | None]
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model: Mapped[str | None] = mapped_column(String(200))
    route_model: Mapped[str | None] = mapped_column(String(128))  # catalog name: its scores
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]


class ChatFeedbackRow(Base):
    """A 👍 (+1) or 👎 (-1) on an answer; a user's later click replaces their earlier one."""

    __tablename__ = "chat_feedback"

    turn_id: Mapped[str] = mapped_column(
        ForeignKey("chat_turns.id", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerRow(Base):
    """An answer given through the API, so that it can be rated (rag.scoreboard). Holds no
    question text unless `auth.audit_questions`."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Who received it: the key's id (its name when auth is off); only they may rate it.
    owner: Mapped[str] = mapped_column(String(128))
    key_name: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))  # catalog name (route.model)
    version: Mapped[str | None] = mapped_column(String(200))  # pinned id (answer.model)
    collection: Mapped[str | None] = mapped_column(String(64))
    question: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerFeedbackRow(Base):
    """A +1 or -1 on an API answer; the same key's later rating replaces its earlier one."""

    __tablename__ = "answer_feedback"

    answer_id: Mapped[str] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    rater: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelScoreRow(Base):
    """Running sums of a model's quality signals, per catalog name and pinned version.

    Eval: `eval_n` questions whose quality (in [0, 1]) sums to `eval_quality`, with latency and
    cost sums over the same questions. Feedback: counts of +1 and -1 (a replaced rating moves
    from one count to the other)."""

    __tablename__ = "model_scores"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    eval_runs: Mapped[int] = mapped_column(default=0)
    eval_n: Mapped[int] = mapped_column(default=0)
    eval_quality: Mapped[float] = mapped_column(default=0.0)
    eval_f1: Mapped[float] = mapped_column(default=0.0)
    eval_f1_n: Mapped[int] = mapped_column(default=0)
    eval_citation_precision: Mapped[float] = mapped_column(default=0.0)
    eval_citation_precision_n: Mapped[int] = mapped_column(default=0)
    eval_abstention: Mapped[float] = mapped_column(default=0.0)
    eval_abstention_n: Mapped[int] = mapped_column(default=0)
    eval_latency_ms: Mapped[float] = mapped_column(default=0.0)
    eval_cost_usd: Mapped[float] = mapped_column(default=0.0)
    feedback_up: Mapped[int] = mapped_column(default=0)
    feedback_down: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

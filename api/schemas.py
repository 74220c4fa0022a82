"""Request and response bodies that are the API's own (domain models are reused as they are)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rag.config import RetrievalMode
from rag.models import ScoredChunk


class CollectionCreate(BaseModel):
    name: str = Field(examples=["handbook"])
    description: str = ""


class TextDocument(BaseModel):
    source: str = Field(description="Stable id of the document, e.g. a path or URL.")
    text: str = Field(min_length=1)
    title: str | None = None
    format: str = Field(default="markdown", pattern="^(markdown|text)$")
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextDocuments(BaseModel):
    documents: list[TextDocument] = Field(min_length=1)


class SearchRequest(BaseModel):
    collection: str
    question: str = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, description="Default from settings.")
    mode: RetrievalMode | None = Field(default=None, description="dense, sparse or hybrid.")
    filters: dict[str, Any] | None = Field(
        default=None,
        description='Equality or any-of on chunk fields or metadata: {"source": "a.pdf", '
        '"team": ["hr", "legal"]}',
    )


class Hit(BaseModel):
    chunk_id: str
    document_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    text: str
    score: float
    similarity: float | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, hit: ScoredChunk) -> Hit:
        c = hit.chunk
        return cls(
            chunk_id=c.id,
            document_id=c.document_id,
            source=c.source,
            title=c.title,
            section=c.section,
            page=c.page,
            text=c.text,
            score=hit.score,
            similarity=hit.similarity,
            metadata=c.metadata,
        )


class RetrieveResponse(BaseModel):
    hits: list[Hit]
    retrieval_ms: float


class Check(BaseModel):
    ok: bool
    detail: str = ""


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]

"""Request and response bodies that are the API's own (domain models are reused as they are)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rag.access import document_access
from rag.generation.catalog import Policy
from rag.generation.router import RouteRequest
from rag.models import ScoredChunk
from rag.retrieval import SearchOptions

# The largest OFFSET SQLite (INTEGER) and PostgreSQL (BIGINT) take.
MAX_OFFSET = 2**63 - 1


class CollectionCreate(BaseModel):
    name: str = Field(examples=["handbook"])
    description: str = ""


class Permissions(BaseModel):
    """Who may retrieve a document: these groups and users; neither = everyone."""

    allowed_groups: list[str] = Field(default_factory=list, examples=[["hr", "legal"]])
    allowed_users: list[str] = Field(default_factory=list, examples=[["alice@example.com"]])

    def access(self) -> list[str]:
        return document_access(self.allowed_groups, self.allowed_users)


class TextDocument(Permissions):
    source: str = Field(description="Stable id of the document, e.g. a path or URL.")
    text: str = Field(min_length=1)
    title: str | None = None
    format: str = Field(default="markdown", pattern="^(markdown|text)$")
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextDocuments(BaseModel):
    documents: list[TextDocument] = Field(min_length=1)


class SearchRequest(SearchOptions):
    """Unset options take the service's configured defaults."""

    collection: str
    question: str = Field(min_length=1)


class QueryRequest(SearchRequest):
    """A question to answer; `model` or `policy` steer which model answers (GET /v1/models)."""

    model: str | None = Field(default=None, description="A catalog model by name.")
    policy: str | Policy | None = Field(
        default=None,
        description='A policy name, or one inline: {"sensitivity": "private", "max_cost_usd": '
        '0.01, "max_latency_ms": 2000, "quality": "balanced", "models": ["local", "gpt"]}.',
    )
    stream: bool = Field(
        default=False,
        description="Server-Sent Events: `token` events, then `answer` (or `error`).",
    )

    def route_request(self) -> RouteRequest | None:
        if self.model is None and self.policy is None:
            return None
        return RouteRequest(model=self.model, policy=self.policy)


class BreakerInfo(BaseModel):
    state: str = Field(description="closed, open or half_open.")
    consecutive_failures: int
    retry_in_s: float = Field(description="Seconds before the model is tried again.")


class ModelInfo(BaseModel):
    name: str
    backend: str
    model: str | None = Field(description="The pinned model version it answers as.")
    self_hosted: bool
    max_sensitivity: str
    quality: str
    context_window: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    latency_ms: float | None
    breaker: BreakerInfo


class ModelList(BaseModel):
    default_policy: str
    policies: dict[str, Policy]
    models: list[ModelInfo]


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

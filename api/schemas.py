"""Request and response bodies that are the API's own (domain models are reused as they are)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.access import document_access
from rag.errors import InvalidInput
from rag.generation.model_catalog import Policy
from rag.generation.router import RouteRequest
from rag.models import ScoredChunk
from rag.retrieval import SearchOptions
from rag.scoreboard import Score
from rag.staging import check_source, safe_source

# The largest OFFSET SQLite (INTEGER) and PostgreSQL (BIGINT) take.
MAX_OFFSET = 2**63 - 1


class Strict(BaseModel):
    """A request body: a field it does not know (a typo such as `allowedGroups`) is a 422, never
    silently ignored."""

    model_config = ConfigDict(extra="forbid")


class CollectionCreate(Strict):
    name: str = Field(examples=["handbook"])
    description: str = ""


class Permissions(Strict):
    """Who may retrieve a document: these groups and users; neither = everyone."""

    allowed_groups: list[str] = Field(default_factory=list, examples=[["hr", "legal"]])
    allowed_users: list[str] = Field(default_factory=list, examples=[["alice@example.com"]])

    def access(self) -> list[str]:
        return document_access(self.allowed_groups, self.allowed_users)

    def given_access(self) -> list[str] | None:
        """For ingestion: None when the request names neither field, so that a document already
        in the collection keeps its list (an empty list given explicitly means everyone)."""
        given = {"allowed_groups", "allowed_users"} & self.model_fields_set
        return self.access() if given else None


class TextDocument(Permissions):
    source: str = Field(description="Stable id of the document, e.g. a path or URL.")
    text: str = Field(min_length=1)
    title: str | None = None
    format: str = Field(default="markdown", pattern="^(markdown|text)$")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source")
    @classmethod
    def _safe_source(cls, source: str) -> str:
        """An uploaded file's rule (`safe_source`), so that a source means the same whichever
        way it came: `../x` refused, `/x` made `x`. A URL is kept as given, `//` and all, since
        citations link to it; it still passes the name checks (`check_source`)."""
        try:
            if source.startswith(("https://", "http://")):
                check_source(source)
                return source
            return safe_source(source)
        except InvalidInput as exc:  # a ValueError is what pydantic reports as a 422
            raise ValueError(exc.message) from None

    def file_name(self) -> str:
        """The source as a file name whose extension gives its format."""
        if self.source.lower().endswith((".md", ".txt")):
            return self.source
        return self.source + (".md" if self.format == "markdown" else ".txt")


class TextDocuments(Strict):
    documents: list[TextDocument] = Field(min_length=1)


class SearchRequest(SearchOptions):
    """Unset options take the service's configured defaults."""

    model_config = ConfigDict(extra="forbid")

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
        description="Server-Sent Events: `token` (or `verified`) events, then `answer` (or "
        "`error`).",
    )
    collections: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="More collections searched with `collection`, in one ranking: the answer "
        "may cite any of them.",
    )
    history: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="The conversation's earlier questions, oldest first: a follow-up that "
        "refers back ('and in 2023?') is asked together with them (as in Slack threads).",
    )
    stream_mode: Literal["raw", "verified"] = Field(
        default="raw",
        description="raw: `token` events with the model's unchecked text, as it is written; "
        "verified: `verified` events with only the sentences that passed verification (what "
        "a person should see).",
    )

    def searched(self) -> list[str]:
        """`collection` and then `collections`, each once."""
        return list(dict.fromkeys([self.collection, *self.collections]))

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
    score: Score | None = Field(
        default=None, description="Measured quality (evals, feedback); None until scored."
    )


class FeedbackRequest(BaseModel):
    """A rating of an answer this key received from POST /v1/query."""

    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(min_length=1, max_length=64)
    value: Literal[1, -1] = Field(description="1 (good) or -1 (bad); a later rating replaces it.")
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackResponse(BaseModel):
    answer_id: str
    value: int


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


class DocumentText(BaseModel):
    """What a reader sees of a document: its text and description, not who else may read it
    nor where its file is (that is `GET .../{document_id}`, for ingest keys)."""

    id: str
    collection: str
    source: str
    title: str
    version: int
    metadata: dict[str, Any]
    chunk_count: int = Field(description="Chunks the text was assembled from.")
    text: str = Field(description="The chunks in order, overlaps removed, a line per section.")

"""Typed values that flow through the pipeline. Nothing here talks to a backend."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from rag.filters import FieldType


def _utc(moment: datetime) -> datetime:
    """The database keeps naive UTC; responses say so (RFC 3339 with an offset)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class ElementKind(StrEnum):
    TITLE = "title"
    TEXT = "text"
    TABLE = "table"
    LIST_ITEM = "list_item"


class Element(BaseModel):
    """One structural piece of a parsed document (a heading, a paragraph, a table...)."""

    kind: ElementKind
    text: str
    page: int | None = None
    heading_level: int | None = None


class Chunk(BaseModel):
    """A token-bounded span of a document, the unit we embed, store and cite."""

    id: str
    document_id: str
    collection: str
    index: int
    text: str
    version: int = 0
    section: str | None = None
    page: int | None = None
    token_count: int = 0
    source: str = ""
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Who may read it (rag.access); enforced by the store's search, never shown to callers.
    access: list[str] = Field(default_factory=lambda: ["*"])

    def embedding_text(self) -> str:
        """The document's title and the section's heading path travel with the text (embedded
        and keyword-indexed), so that a chunk keeps its context: "Travel policy > Approvals".
        A title that is already the path's first heading is not said twice."""
        path = self.section.split(" > ") if self.section else []
        title = self.title.strip()
        head = [title] if title and title not in path[:1] else []
        context = " > ".join(head + path)
        return f"{context}\n{self.text}" if context else self.text


class ScoredChunk(BaseModel):
    chunk: Chunk
    score: float
    # Cosine similarity of the chunk to the question: comparable across modes, unlike fused scores.
    similarity: float | None = None
    # The chunk's dense vector, for diversifying results; never serialized.
    vector: list[float] | None = Field(default=None, exclude=True, repr=False)


class Citation(BaseModel):
    marker: int = Field(description="The [n] this citation is shown as in the answer.")
    chunk_id: str
    document_id: str
    collection: str | None = Field(
        default=None, description="The collection the document is in (several may be searched)."
    )
    source: str
    title: str
    section: str | None
    page: int | None
    snippet: str = Field(description="The passage text that supports the answer.")
    score: float


class ClaimLabel(StrEnum):
    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    NOT_FOUND = "not_found"


class EvidenceSpan(BaseModel):
    """Where a claim was checked: one sentence of a passage, or two adjacent ones."""

    passage: int = Field(description="The passage's [n] as it was shown to the model.")
    chunk_id: str
    start: int = Field(description="Character offset of the span in the chunk's text.")
    end: int
    text: str


class CheckedClaim(BaseModel):
    """One claim of the model's answer and what verification found."""

    text: str
    label: ClaimLabel
    score: float = Field(description="How likely the passages support it, 0..1.")
    citations: list[int] = Field(
        default_factory=list, description="The answer's citation markers backing it."
    )
    evidence: list[EvidenceSpan] = Field(default_factory=list)
    note: str | None = Field(
        default=None, description="Why it was not checked (not a claim), if so."
    )


class Verification(BaseModel):
    """Which verifier judged the answer, and its verdict on every claim."""

    verifier: str = Field(description="What decided: 'deterministic@<version>' or 'llm:<model>'.")
    requested: str = Field(description="What the policy asked for.")
    fallback: str | None = Field(
        default=None, description="Why the requested verifier did not decide, if it did not."
    )
    claims: list[CheckedClaim] = Field(default_factory=list)
    latency_ms: float = 0.0


class Passage(BaseModel):
    """A retrieved chunk as shown to a model, numbered from 1."""

    marker: int
    text: str
    title: str = ""
    section: str | None = None


class GroundedPrompt(BaseModel):
    """What a generator is asked. Each backend renders it in its own prompt format."""

    question: str
    passages: list[Passage]
    max_tokens: int = 128
    task: Literal["answer", "verify"] = Field(
        default="answer", description="verify: judge `claims` against the passages (JSON)."
    )
    claims: list[str] = Field(default_factory=list, description="verify: the claims to judge.")


class Attempt(BaseModel):
    """A model of the fallback chain that did not answer, and why."""

    model: str = Field(description="Catalog name of the model.")
    error: str = Field(description="Error code, e.g. backend_rate_limited, circuit_open.")
    message: str
    retryable: bool
    sent: bool = Field(description="False when it was skipped (breaker open, Retry-After).")


class Screened(BaseModel):
    """Passages screened for text aimed at the model (rag.guard.injection), for one question."""

    flagged: int = 0
    defused: int = 0
    dropped: int = 0
    patterns: list[str] = Field(default_factory=list, description="The patterns that matched.")


class RouteScore(BaseModel):
    """The measured score that ranked the model that answered (`prefer: measured`)."""

    quality: float | None = Field(description="Estimated quality in [0, 1]; None when unscored.")
    n: int = Field(description="Observations behind it: eval questions plus ratings.")
    source: Literal["eval", "feedback", "eval+feedback", "none"]


class Route(BaseModel):
    """How the router chose the model that answered: recorded on every routed answer."""

    model: str = Field(description="Catalog name of the model that answered.")
    reason: str = Field(description="The rule that picked it.")
    policy: str = Field(description="Policy name, 'inline', or 'model' when one was named.")
    fallbacks: list[Attempt] = Field(default_factory=list)
    degraded: bool = Field(
        default=False, description="True when the extractive fallback answered for failed models."
    )
    cost_usd: float = Field(default=0.0, description="Prompt and completion tokens × prices.")
    ttft_ms: float | None = Field(default=None, description="Time to the first token.")
    latency_ms: float = 0.0
    verifier: str | None = Field(default=None, description="Who checked the answer's claims.")
    masked: dict[str, int] | None = Field(
        default=None,
        description="Personal data masked before a model that may not see it: distinct values "
        "by type (PERSON, EMAIL...); None when nothing was sent masked.",
    )
    screened: Screened | None = Field(
        default=None, description="Passages flagged for instruction-like text, if any were."
    )
    score: RouteScore | None = Field(
        default=None, description="Under `prefer: measured`: the score that ranked this model."
    )


class Generation(BaseModel):
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    route: Route | None = None


class Timings(BaseModel):
    retrieval_ms: float
    generation_ms: float = 0.0
    verification_ms: float = 0.0
    total_ms: float


class Answer(BaseModel):
    answer_id: str | None = Field(
        default=None, description="What to rate with POST /v1/feedback (set by the API)."
    )
    question: str
    answer: str
    answerable: bool
    citations: list[Citation]
    cited_answer: str = Field(
        default="",
        description="`answer` with the markers of the citations each sentence rests on, before "
        "its full stop: 'Leave is 30 days [1].'",
    )
    model: str | None = Field(description="The pinned model that produced the answer, if any did.")
    model_cited: bool | None = Field(
        default=None,
        description="Whether the model's text cited a passage it was sent with an [n] marker "
        "(citations are attributed by the grounding check either way); None when no model ran.",
    )
    invented_markers: list[int] = Field(
        default_factory=list,
        description="[n] markers the model wrote that name no passage sent; never cited.",
    )
    reason: str | None = Field(
        default=None, description="Why the answer is what it is, if not plain."
    )
    usage: dict[str, int] = Field(default_factory=dict)
    timings: Timings
    route: Route | None = Field(default=None, description="Model routing, when a model answered.")
    verification: Verification | None = Field(
        default=None, description="Claim-level verification, when a model answered."
    )
    unsupported: list[CheckedClaim] = Field(
        default_factory=list,
        description="Claims dropped from the answer, with their label (contradicted, not_found).",
    )
    screened: Screened | None = Field(
        default=None,
        description="Passages flagged for instruction-like text when no model ran (else on "
        "`route`).",
    )
    redacted: list[str] = Field(
        default_factory=list,
        description="Kinds of secret-shaped strings replaced by '[redacted secret]' (never "
        "their values).",
    )


class SparseVector(BaseModel):
    """Keyword term weights: `indices` are hashed terms, `values` their BM25 document weights."""

    indices: list[int]
    values: list[float]


# Catalog views: what the metadata database knows about collections, documents and jobs. ------


class CollectionInfo(BaseModel):
    name: str
    description: str
    embedding_model: str
    document_count: int
    metadata_fields: dict[str, FieldType] = Field(
        default_factory=dict, description="Metadata keys its documents carry, with their types."
    )
    created_at: UtcDatetime


class DocumentInfo(BaseModel):
    id: str
    collection: str
    source: str
    title: str
    format: str
    status: str
    error: str | None
    chunk_count: int
    content_hash: str
    size_bytes: int
    version: int
    duplicate_of: str | None = Field(
        default=None, description="The document with the same content, indexed in its place."
    )
    metadata: dict[str, Any]
    allowed_groups: list[str] = Field(default_factory=list, description="Empty: everyone.")
    allowed_users: list[str] = Field(default_factory=list)
    created_at: UtcDatetime
    updated_at: UtcDatetime


class JobDocument(BaseModel):
    document_id: str
    source: str
    status: str
    error: str | None
    chunks: int
    attempts: int


class Rejection(BaseModel):
    """An input that never became a document (unsafe archive member, unsupported type...)."""

    name: str
    reason: str


class JobInfo(BaseModel):
    id: str
    collection: str
    status: str = Field(
        description="queued, running, paused, cancelled, succeeded, completed_with_errors, failed"
    )
    origin: str = Field(description='What the job was made from: "upload", "archive x.zip"...')
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    counts: dict[str, int] = Field(
        description="Documents per state: queued, parsing, embedding, done, failed, skipped."
    )
    total: int
    progress: float = Field(description="Finished documents / all documents, 0..1.")
    docs_per_s: float | None = Field(description="Documents parsed and indexed per second.")
    eta_s: float | None = Field(description="Seconds left at the current rate.")
    rejected: list[Rejection] = Field(description="Inputs that never became documents, and why.")
    pruned: int = Field(description="Documents deleted because they left the source folder.")
    documents: list[JobDocument] = Field(
        description="A page of the job's documents (see the documents_* query parameters)."
    )


class DeadLetter(BaseModel):
    """A document whose latest ingestion failed for good; retry it with one call."""

    job_id: str
    document_id: str
    collection: str
    source: str
    error: str | None
    attempts: int
    failed_at: UtcDatetime | None

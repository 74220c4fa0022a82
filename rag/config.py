"""One `Settings` object for the whole service, built once by `get_settings()`.

Every field has an embedded default, so nothing needs configuring on one machine. Environment
variables use the `RAG_` prefix and `__` for nesting (`RAG_GENERATOR__MAX_TOKENS=64`); the
well-known `DATABASE_URL`, `QDRANT_URL` and `QDRANT_API_KEY` are honoured as they are. A TOML file
named by `RAG_CONFIG_FILE` (or `./rag.toml` when present) supplies values below the environment.
Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

RetrievalMode = Literal["dense", "sparse", "hybrid"]
Fusion = Literal["rrf", "dbsf"]


class QdrantSettings(BaseModel):
    url: str | None = Field(default=None, description="Qdrant server; unset = embedded store.")
    api_key: SecretStr | None = None
    path: Path | None = Field(default=None, description="Embedded store folder (data_dir/qdrant).")
    embedded_engine: Literal["edge", "local"] = Field(
        default="edge",
        description="Embedded store without a url: edge (Qdrant's in-process Rust engine) or "
        "local (qdrant-client's Python local mode).",
    )
    collection_prefix: str = "rag_"
    timeout_s: float = 10.0
    index_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Embedded edge store: once a collection holds this many points more than at "
        "its last index build, its HNSW index is built in a child process and swapped in "
        "(searches stay exact meanwhile); 0 = never.",
    )


class EmbeddingSettings(BaseModel):
    model: str | None = Field(default=None, description="Path or name; unset = packaged MiniLM.")
    backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="onnx: ONNX Runtime, the model exported once at first use (same vectors, "
        "faster, no torch in the process); torch: sentence-transformers.",
    )
    quantize: Literal["none", "int8"] = Field(
        default="int8",
        description="ONNX only. int8 (dynamic, per channel) encodes 1.4-1.8x faster than fp32 "
        "with the same SciFact nDCG@10 and verification rates; none = fp32, torch's vectors.",
    )
    cache_dir: Path | None = Field(
        default=None, description="Where ONNX exports are kept (data_dir/models/onnx)."
    )
    threads: int = Field(default=0, ge=0, description="ONNX Runtime threads; 0 = one per core.")
    batch_size: int = 32
    device: str = "cpu"


class ChunkingSettings(BaseModel):
    max_tokens: int = Field(default=200, description="Body tokens per chunk (MiniLM reads 256).")
    overlap_tokens: int = 32


class GeneratorSettings(BaseModel):
    """The packaged llama.cpp model's settings, and where a model catalog lives.

    Without `catalog_file` the catalog is built in: this llama.cpp model (named `local`) and the
    extractive fallback. With one, the file lists every model (see rag.generation.model_catalog).
    """

    backend: Literal["llama_cpp"] = "llama_cpp"
    catalog_file: Path | None = Field(
        default=None, description="TOML model catalog; unset = the local model + extractive."
    )
    default_policy: str | None = Field(
        default=None, description="Policy used when a request names none; unset = catalog's."
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failures that open a model's circuit breaker."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, description="How long an open breaker waits before one probe."
    )
    model_path: Path | None = Field(
        default=None, description="GGUF file; unset = the packaged model (`packaged`)."
    )
    packaged: str | None = Field(
        default=None,
        description="Packaged GGUF used as `local` (gemma-3-270m, qwen2.5-coder-1.5b, "
        "qwen2.5-coder-0.5b); unset = gemma-3-270m. Not with model_path.",
    )
    model_id: str | None = Field(default=None, description="Pinned name recorded on answers.")
    context_window: int = 2048
    max_tokens: int = 96
    temperature: float = 0.0
    threads: int | None = None


class RetrievalSettings(BaseModel):
    top_k: int = 5
    max_top_k: int = 50
    mode: RetrievalMode = "hybrid"
    fusion: Fusion = Field(
        default="rrf", description="How hybrid merges dense and keyword results: rrf or dbsf."
    )
    max_per_document: int | None = Field(
        default=3, ge=1, description="At most this many chunks of one document (None = no cap)."
    )
    mmr_lambda: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Maximal marginal relevance: 1 = pure relevance, lower = more diverse "
        "chunks; None = off.",
    )
    rerank_top_n: int | None = Field(
        default=None,
        ge=2,
        description="Rerank this many best candidates with the local model (query likelihood) "
        "before diversifying; None = off unless a request asks (then 20).",
    )
    min_similarity: float = Field(
        default=0.25,
        description="Below this cosine similarity of the best passage, abstain without a model.",
    )


class VerificationSettings(BaseModel):
    """How answers are checked claim by claim (rag.verification)."""

    verifier: str = Field(
        default="deterministic",
        description="deterministic, a catalog model name, or self (the model that answered); "
        "a routing policy's `verifier` overrides it.",
    )
    model_file: Path | None = Field(
        default=None,
        description="The deterministic verifier's fitted model (JSON from `rag eval grounding "
        "--fit`); unset = the one shipped with the service.",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="An LLM verifier slower than this falls back."
    )


class WorkerSettings(BaseModel):
    embedded: bool | None = Field(
        default=None, description="Run a worker inside `rag serve`; unset = yes unless QDRANT_URL."
    )
    concurrency: int = Field(
        default=2,
        ge=1,
        description="Documents at once per worker: one parses while another embeds, and their "
        "chunks share embedding batches (300 SciFact documents on 2 cores: 2 threads 1.2-1.24x "
        "the chunks/s of 1, 3 no better than 2).",
    )
    queue: str = "rag.ingest"
    task_max_retries: int = 5
    lease_s: float = Field(
        default=60.0,
        description="A running document's worker renews its lease this often (x1/4); a lease "
        "this old means the worker died and the document is sent again.",
    )
    relay_interval_s: float = Field(
        default=15.0, description="How often lost or orphaned work is looked for and re-sent."
    )
    visibility_timeout_s: float = Field(
        default=1800.0,
        description="Redis re-delivers an unacknowledged task after this long (a backstop: the "
        "lease recovers crashed work sooner; a duplicate delivery is ignored).",
    )
    redispatch_after_s: float = Field(
        default=60.0, description="Re-send a queued document nobody has started after this long."
    )
    parse_timeout_s: float = Field(
        default=300.0, gt=0, description="A document still parsing after this long fails."
    )
    parse_memory_mb: int | None = Field(
        default=2048,
        ge=1024,
        description="Memory (RLIMIT_DATA) one parse may use; None = no cap. Below 1024 MiB the "
        "parser's own imports fail.",
    )
    parse_isolated: bool = Field(
        default=True,
        description="Parse in recycled child processes, where the time and memory limits apply.",
    )


class IngestSettings(BaseModel):
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Server folders that folder and manifest jobs may read (none: no paths).",
    )
    allowed_url_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts manifest URLs may come from ("docs.example.com", "*.example.com").',
    )
    max_archive_mb: float = 2048.0
    max_archive_ratio: float = Field(
        default=100.0, description="Uncompressed/compressed size above which a member is a bomb."
    )
    max_archive_members: int = 100_000


class OcrSettings(BaseModel):
    """OCR (tesseract) of PDF pages without a text layer (rag.formats.pdf).

    Read in the parse child through `get_settings()`, so set it in the environment or the TOML file
    (RAG_OCR__ENABLED=false), not on a `Settings` built in code.
    """

    enabled: bool = Field(
        default=True, description="OCR the pages of a PDF that have no text layer (scans)."
    )
    languages: str = Field(
        default="eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description='Tesseract languages, "eng+deu"; each needs its Debian tesseract-ocr-<lang>.',
    )
    dpi: int = Field(default=300, ge=72, le=600, description="Resolution pages are OCRed at.")
    page_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A page whose rendering and OCR take longer fails its document (a clear "
        "reason, not a silently missing page).",
    )


class RateLimit(BaseModel):
    per_minute: float = Field(description="Sustained requests per minute per key; 0 = no limit.")
    burst: int = Field(ge=1, description="Requests a key may make at once after a quiet spell.")


class AuthSettings(BaseModel):
    """API keys, rate limits and who may read what (docs/security.md)."""

    enabled: bool = Field(
        default=True, description="Require an API key on /v1 (off only for a private laptop)."
    )
    query_rate: RateLimit = Field(
        default=RateLimit(per_minute=600, burst=60),
        description="Per key: queries and every read (GET) of a non-admin route.",
    )
    ingest_rate: RateLimit = Field(
        default=RateLimit(per_minute=300, burst=60),
        description="Per key: uploads, jobs, deletes and permission changes.",
    )
    key_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="A verified key is trusted this long without a database read; a revocation "
        "reaches other API processes within it.",
    )
    max_active_jobs: int = Field(
        default=4, ge=1, description="Unfinished ingestion jobs one key may have at once."
    )
    user_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="End user → groups, for delegate keys acting for a user (X-On-Behalf-Of).",
    )
    redis_url: str | None = Field(
        default=None, description="Rate-limit buckets' Redis; unset = the broker's, if Redis."
    )
    audit_questions: bool = Field(
        default=False, description="Store query text in the audit log (ids only by default)."
    )


class SlackChannel(BaseModel):
    """What the chat bot does in one channel (keyed by Slack channel id, C…/G…/D…)."""

    collections: list[str] | None = Field(
        default=None, description="Collections searched here; unset = slack.collections."
    )
    policy: str | None = Field(default=None, description="Routing policy; unset = slack.policy.")
    model: str | None = Field(default=None, description="Catalog model, instead of a policy.")
    groups: list[str] = Field(
        default_factory=list,
        description="Groups every member of the channel belongs to: documents limited to them "
        "may be quoted here (answers in a channel are seen by all its members).",
    )


class SlackSettings(BaseModel):
    """The Slack bot (docs/slack.md). Secrets come from the environment variables named here."""

    enabled: bool | None = Field(
        default=None, description="Serve /slack/events; unset = yes when both secrets are set."
    )
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = Field(
        default="SLACK_APP_TOKEN", description="Socket Mode's app-level token (xapp-…)."
    )
    socket_mode: bool = Field(
        default=False, description="Connect out to Slack (no public URL needed) instead of HTTP."
    )
    api_url: str = Field(default="https://slack.com/api/", description="Slack's Web API.")
    command: str = Field(default="/ask", description="The slash command, as in the app manifest.")
    collections: list[str] = Field(
        default_factory=lambda: ["default"], description="Collections searched by default."
    )
    policy: str | None = Field(default=None, description="Routing policy; unset = the service's.")
    channels: dict[str, SlackChannel] = Field(default_factory=dict)
    queue: str = Field(
        default="rag.chat", description="Celery queue of answers (never behind bulk ingestion)."
    )
    history_turns: int = Field(
        default=3, ge=0, description="Earlier questions of a thread used to condense a follow-up."
    )
    rate_limit_retries: int = Field(
        default=3, ge=0, description="How often a Slack 429 is waited out (Retry-After)."
    )


class GuardSettings(BaseModel):
    """Guards on passages and answers (rag.guard)."""

    injection: Literal["flag", "defuse", "drop"] = Field(
        default="defuse",
        description="Passages with text aimed at the model: flag (keep, count, show on the "
        "answer), defuse (strip hidden text, replace the sentence) or drop (leave out).",
    )


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 50.0
    max_json_mb: float = Field(default=10.0, description="Largest JSON request body.")
    max_question_chars: int = 2000
    shutdown_grace_s: int = Field(
        default=30, description="On SIGTERM, seconds requests in flight may take to finish."
    )


class UiSettings(BaseModel):
    """The web UI at /ui (docs/ui.md)."""

    enabled: bool = Field(default=True, description="Serve the web UI at /ui.")
    session_hours: float = Field(
        default=12.0, gt=0, description="A browser stays signed in this long, then signs in again."
    )
    secure_cookie: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure; unset = when the request came over HTTPS "
        "(X-Forwarded-Proto from a proxy counts).",
    )


class OpenAICompatSettings(BaseModel):
    """The OpenAI-compatible chat endpoint (/openai/v1): a "model" names a collection, or one of
    these aliases for several searched together, optionally with `@policy`."""

    aliases: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Model names for collections searched together: {"everything": ["handbook", '
        '"wiki"]}. A key sees an alias only when it may use all of its collections.',
    )
    history_turns: int = Field(
        default=3, ge=0, description="Earlier user messages used to condense a follow-up."
    )


class ObservabilitySettings(BaseModel):
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one object per line, with request_id, job_id and trace_id.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector for traces (http://collector:4318); unset = "
        "OTEL_EXPORTER_OTLP_ENDPOINT, else tracing is off.",
    )
    service_name: str = "rag"
    worker_metrics_port: int = Field(
        default=9108, description="`rag worker` serves /metrics on this port; 0 = not at all."
    )


class PrivacySettings(BaseModel):
    collections: dict[str, Literal["public", "internal", "private"]] = Field(
        default_factory=dict,
        description='Data sensitivity per collection, e.g. {"hr": "private"}: a question over '
        "it is routed (or masked, rag.privacy) as at least that sensitive, whatever its policy.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="ignore", toml_file=None
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    data_dir: Path = Path(".rag")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RAG_DATABASE_URL", "DATABASE_URL")
    )
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("RAG_BROKER_URL", "CELERY_BROKER_URL"),
    )
    qdrant: QdrantSettings = QdrantSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    generator: GeneratorSettings = GeneratorSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    verification: VerificationSettings = VerificationSettings()
    worker: WorkerSettings = WorkerSettings()
    ingest: IngestSettings = IngestSettings()
    ocr: OcrSettings = OcrSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    slack: SlackSettings = SlackSettings()
    openai_api: OpenAICompatSettings = OpenAICompatSettings()
    ui: UiSettings = UiSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    privacy: PrivacySettings = PrivacySettings()
    guard: GuardSettings = GuardSettings()

    @model_validator(mode="after")
    def _well_known_env(self) -> Settings:
        # QDRANT_URL / QDRANT_API_KEY are what every Qdrant user already exports.
        if self.qdrant.url is None and os.environ.get("QDRANT_URL"):
            self.qdrant.url = os.environ["QDRANT_URL"]
        if self.qdrant.api_key is None and os.environ.get("QDRANT_API_KEY"):
            self.qdrant.api_key = SecretStr(os.environ["QDRANT_API_KEY"])
        if self.observability.otlp_endpoint is None:
            self.observability.otlp_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if self.chunking.overlap_tokens >= self.chunking.max_tokens:
            raise ValueError("chunking.overlap_tokens must be smaller than chunking.max_tokens")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("RAG_CONFIG_FILE") or (
            "rag.toml" if Path("rag.toml").exists() else None
        )
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"RAG_CONFIG_FILE={config_file} does not exist")
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=config_file),)
        return sources

    # Derived locations -------------------------------------------------------------------

    @property
    def embedded_store(self) -> bool:
        return self.qdrant.url is None

    @property
    def run_embedded_worker(self) -> bool:
        return self.worker.embedded if self.worker.embedded is not None else self.embedded_store

    @property
    def queues(self) -> list[str]:
        """Every Celery queue we use: ingestion, then chat answers."""
        return [self.worker.queue, self.slack.queue]

    @property
    def onnx_cache_dir(self) -> Path:
        return self.embedding.cache_dir or self.data_dir / "models" / "onnx"

    @property
    def qdrant_path(self) -> Path:
        return self.qdrant.path or self.data_dir / "qdrant"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def staging_dir(self) -> Path:
        """Where incoming files are streamed before a job takes them (same file system as
        `uploads_dir`, so taking one is a rename)."""
        return self.uploads_dir / ".staging"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the URLs people paste from Heroku/compose files.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{(self.data_dir / 'rag.db').resolve()}"

    @property
    def ratelimit_redis_url(self) -> str | None:
        if self.auth.redis_url:
            return self.auth.redis_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.api.max_upload_mb * 1024 * 1024)

    @staticmethod
    def env_secret(name: str) -> SecretStr | None:
        """A secret named in configuration (a model's `api_key_env`), read from the environment.

        Secrets never sit in a config file; this is the one place that reads them.
        """
        value = os.environ.get(name)
        return SecretStr(value) if value else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

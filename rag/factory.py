"""Builds the backends named in `Settings` and wires them into one `Runtime`.

One runtime per process: the API and an in-process worker share it, which is what lets one
process own the embedded Qdrant store. Heavy parts (models, llama-index) load on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import SecretStr

from rag.answering import Answerer
from rag.audit import AuditLog
from rag.auth import ApiKeys
from rag.chat import Chat
from rag.chunking import Chunker
from rag.collections import Catalog
from rag.config import Settings, get_settings
from rag.db.session import Database, open_database
from rag.embedding import Embedder
from rag.embedding.batching import BatchingEmbedder
from rag.embedding.onnx import OnnxEmbedder
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.generation import RoutedGenerator
from rag.generation.model_catalog import ModelCatalog, load_catalog, resolve_secrets
from rag.generation.router import Router
from rag.ingestion import Ingestor, Parse
from rag.jobs import Jobs
from rag.logs import register_secret
from rag.models import Element
from rag.parse_pool import IsolatedParser
from rag.reranking.llama_cpp import LlamaReranker
from rag.retrieval import Retriever
from rag.scoreboard import Scoreboard
from rag.sessions import Sessions
from rag.sparse import Bm25Encoder
from rag.stores import VectorStore
from rag.stores.qdrant import QdrantStore
from rag.stores.qdrant_edge import QdrantEdgeStore
from rag.verification.deterministic import DeterministicVerifier
from rag.verification.model import load_model
from rag.verification.select import Verifiers


def build_embedder(settings: Settings) -> Embedder:
    e = settings.embedding
    if e.backend == "torch":
        return SentenceTransformerEmbedder(e.model, batch_size=e.batch_size, device=e.device)
    return OnnxEmbedder(
        e.model,
        cache_dir=settings.onnx_cache_dir,
        batch_size=e.batch_size,
        quantize=e.quantize,
        threads=e.threads,
    )


def build_store(settings: Settings) -> QdrantStore | QdrantEdgeStore:
    q = settings.qdrant
    if q.url is None and q.embedded_engine == "edge":
        return QdrantEdgeStore(
            path=settings.qdrant_path,
            prefix=q.collection_prefix,
            index_threshold=q.index_threshold,
        )
    api_key = q.api_key.get_secret_value() if q.api_key else None
    register_secret(api_key)
    return QdrantStore(
        url=q.url,
        api_key=api_key,
        path=None if q.url else settings.qdrant_path,
        prefix=q.collection_prefix,
        timeout_s=q.timeout_s,
    )


def load_models(settings: Settings) -> tuple[ModelCatalog, dict[str, SecretStr]]:
    """The model catalog and its API keys; `ConfigError` (naming the entry or the missing
    environment variable) when the service must not start."""
    catalog = load_catalog(settings)
    secrets = resolve_secrets(catalog, settings.env_secret)
    for value in secrets.values():
        register_secret(value.get_secret_value())
    return catalog, secrets


def build_router(settings: Settings, embedder: Embedder | None = None) -> Router:
    catalog, keys = load_models(settings)
    g = settings.generator
    return Router(
        catalog,
        api_keys=keys,
        embedder=embedder,
        breaker_failures=g.breaker_failures,
        breaker_cooldown_s=g.breaker_cooldown_s,
    )


def build_reranker(settings: Settings) -> LlamaReranker:
    """The generator's local model as a reranker; constructing it loads nothing."""
    g = settings.generator
    return LlamaReranker(g.model_path, threads=g.threads)


def _parse(path: Path, filename: str) -> list[Element]:
    from rag.parsing import parse_file

    return parse_file(path, filename=filename)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: VectorStore
    embedder: Embedder

    @cached_property
    def sparse(self) -> Bm25Encoder:
        return Bm25Encoder()

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(
            self.db, self.store, self.settings.uploads_dir, embedding_model=self.embedder.model_name
        )

    @cached_property
    def jobs(self) -> Jobs:
        return Jobs(self.catalog)

    @cached_property
    def keys(self) -> ApiKeys:
        return ApiKeys(self.db, cache_s=self.settings.auth.key_cache_s)

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self.db, self.keys, ttl_s=self.settings.ui.session_hours * 3600)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @cached_property
    def scoreboard(self) -> Scoreboard:
        return Scoreboard(self.db)

    @cached_property
    def router(self) -> Router:
        router = build_router(self.settings, self.embedder)
        router.scores = self.scoreboard.scores  # read only under `prefer: measured`
        return router

    @cached_property
    def generator(self) -> RoutedGenerator:
        """What answers: the router over the configured catalog (by default the packaged
        Qwen 0.5B, then Gemma, then the extractive)."""
        return self.router

    @cached_property
    def chunker(self) -> Chunker:
        c = self.settings.chunking
        return Chunker(
            self.embedder.tokenize, max_tokens=c.max_tokens, overlap_tokens=c.overlap_tokens
        )

    @cached_property
    def parser(self) -> Parse:
        """In child processes (time and memory limits, one per worker thread), or in-process."""
        w = self.settings.worker
        if not w.parse_isolated:
            return _parse
        return IsolatedParser(
            timeout_s=w.parse_timeout_s, max_memory_mb=w.parse_memory_mb, workers=w.concurrency
        )

    @cached_property
    def ingestor(self) -> Ingestor:
        # Several worker threads: their documents' chunks share embedding batches.
        concurrent = self.settings.worker.concurrency > 1
        return Ingestor(
            self.catalog,
            self.parser,
            self.chunker,
            BatchingEmbedder(self.embedder) if concurrent else self.embedder,
            self.sparse,
            self.store,
            lease_s=self.settings.worker.lease_s,
        )

    @cached_property
    def reranker(self) -> LlamaReranker:
        return build_reranker(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        # The reranker's model loads on the first request that reranks, not before.
        return Retriever(
            self.catalog,
            self.embedder,
            self.sparse,
            self.store,
            self.settings.retrieval,
            reranker=self.reranker,
        )

    @cached_property
    def verifiers(self) -> Verifiers:
        v = self.settings.verification
        return Verifiers(
            DeterministicVerifier(self.embedder, load_model(v.model_file)),
            router=self.router,
            default=v.verifier,
            timeout_s=v.timeout_s,
        )

    @cached_property
    def answerer(self) -> Answerer:
        return Answerer(
            self.retriever,
            self.generator,
            self.verifiers,
            min_similarity=self.settings.retrieval.min_similarity,
            max_tokens=self.settings.generator.max_tokens,
            injection=self.settings.guard.injection,
            sensitivity=self.settings.privacy.collections,
        )

    @cached_property
    def chat(self) -> Chat:
        return Chat(
            self.db,
            self.answerer,
            self.settings.slack,
            user_groups=self.settings.auth.user_groups,
            audit=self.audit,
            scoreboard=self.scoreboard,
        )

    def close(self) -> None:
        if "audit" in self.__dict__:
            self.audit.close()
        if "router" in self.__dict__:
            self.router.close()
        if "reranker" in self.__dict__:
            self.reranker.close()
        if isinstance(self.__dict__.get("parser"), IsolatedParser):
            self.__dict__["parser"].close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
        self.db.dispose()


def build_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    return Runtime(
        settings=settings,
        db=open_database(settings.sqlalchemy_url),
        store=build_store(settings),
        embedder=build_embedder(settings),
    )


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime, built from `get_settings()` on first use (worker processes)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = build_runtime(get_settings())
        return _runtime


def install_runtime(runtime: Runtime | None) -> None:
    """Make `runtime` the process's runtime (the API does, so its in-process worker shares it)."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime

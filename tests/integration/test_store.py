"""The Qdrant store on the real engine: embedded by default, a server when QDRANT_URL is set."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.chunking import chunk_id
from rag.errors import BackendUnavailable
from rag.models import Chunk
from rag.sparse import Bm25Encoder
from rag.stores.qdrant import QdrantStore
from tests.conftest import make_settings

TEXTS = {
    "a": ["The fleet controller is written in Rust.", "Deployments happen on Tuesdays."],
    "b": ["Severity 1 incidents are acknowledged within 15 minutes.", "The Tilburg warehouse."],
}


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def store(tmp_path: Path, embedder) -> Iterator[QdrantStore]:  # type: ignore[no-untyped-def]
    from rag.factory import build_store

    store = build_store(make_settings(tmp_path))
    sparse = Bm25Encoder()
    store.ensure_collection("docs", embedder.dimension)
    for doc, texts in TEXTS.items():
        chunks = [
            Chunk(
                id=chunk_id(doc, i),
                document_id=doc,
                collection="docs",
                index=i,
                text=t,
                source=f"{doc}.md",
                title=doc,
                metadata={"team": "eng" if doc == "a" else "ops"},
            )
            for i, t in enumerate(texts)
        ]
        store.upsert(
            chunks, embedder.embed_documents(texts), [sparse.encode_document(t) for t in texts]
        )
    yield store
    store.drop_collection("docs")
    store.close()


def _search(store: QdrantStore, embedder, question: str, **kwargs):  # type: ignore[no-untyped-def]
    sparse = Bm25Encoder()
    kwargs.setdefault("mode", "hybrid")
    kwargs.setdefault("limit", 4)
    return store.search(
        "docs", dense=embedder.embed_query(question), sparse=sparse.encode_query(question), **kwargs
    )


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_each_mode_finds_the_passage(store: QdrantStore, embedder, mode: str) -> None:  # type: ignore[no-untyped-def]
    hits = _search(store, embedder, "Which language is the fleet controller written in?", mode=mode)
    assert hits[0].chunk.text == TEXTS["a"][0]
    assert hits[0].similarity is not None and hits[0].similarity > 0.3


def test_filters_on_chunk_fields_and_metadata(store: QdrantStore, embedder) -> None:  # type: ignore[no-untyped-def]
    hits = _search(store, embedder, "Rust", filters={"team": "ops"})
    assert {h.chunk.document_id for h in hits} == {"b"}
    hits = _search(store, embedder, "Rust", filters={"source": ["a.md", "b.md"]})
    assert {h.chunk.document_id for h in hits} == {"a", "b"}


def test_upsert_is_idempotent_and_delete_removes_a_tail(store: QdrantStore, embedder) -> None:  # type: ignore[no-untyped-def]
    assert store.count("docs") == 4
    chunk = Chunk(id=chunk_id("a", 0), document_id="a", collection="docs", index=0, text="x")
    store.upsert([chunk], embedder.embed_documents(["x"]), [Bm25Encoder().encode_document("x")])
    assert store.count("docs") == 4  # same id: overwritten, not duplicated
    store.delete_document("docs", "a", from_index=1)
    assert store.count("docs", "a") == 1
    store.delete_document("docs", "a")
    assert store.count("docs", "a") == 0 and store.count("docs", "b") == 2


def test_collections_are_isolated(store: QdrantStore, embedder) -> None:  # type: ignore[no-untyped-def]
    store.ensure_collection("other", embedder.dimension)
    try:
        hits = store.search(
            "other",
            dense=embedder.embed_query("Rust"),
            sparse=Bm25Encoder().encode_query("Rust"),
            mode="hybrid",
            limit=5,
        )
        assert hits == []
    finally:
        store.drop_collection("other")


def test_embedded_store_held_by_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    if make_settings(tmp_path).qdrant.url:
        pytest.skip("the lock only exists for the embedded store")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from qdrant_client import QdrantClient; "
            f"c = QdrantClient(path={str(tmp_path / 'q')!r}); "
            "print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        store = QdrantStore(path=tmp_path / "q")
        with pytest.raises(BackendUnavailable, match="QDRANT_URL"):
            store.ping()
    finally:
        holder.kill()
        holder.wait()

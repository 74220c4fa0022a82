"""The Qdrant stores on their real engines: every test runs against the embedded engines (edge, and
qdrant-client's local mode), or against a server when QDRANT_URL is set."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.chunking import chunk_id
from rag.errors import BackendUnavailable
from rag.filters import merge_field_types, parse_filters
from rag.models import Chunk
from rag.sparse import Bm25Encoder
from rag.stores.qdrant import QdrantStore
from rag.stores.qdrant_edge import QdrantEdgeStore
from tests.conftest import make_settings

TEXTS = {
    "a": ["The fleet controller is written in Rust.", "Deployments happen on Tuesdays."],
    "b": ["Severity 1 incidents are acknowledged within 15 minutes.", "The Tilburg warehouse."],
}
BACKENDS = ["server"] if os.environ.get("QDRANT_URL") else ["edge", "local"]


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def _chunks(doc: str, texts: list[str]) -> list[Chunk]:
    return [
        Chunk(
            id=chunk_id(doc, i),
            document_id=doc,
            collection="docs",
            index=i,
            text=t,
            source=f"{doc}.md",
            title=doc,
            metadata={
                "team": "eng" if doc == "a" else "ops",
                "published": "2024-03-01" if doc == "a" else "2025-06-15T12:00:00Z",
                "score": 0.5 if doc == "a" else 2.25,
                "draft": doc == "b",
                "tags": ["rust", "backend"] if doc == "a" else ["support"],
            },
        )
        for i, t in enumerate(texts)
    ]


@pytest.fixture(params=BACKENDS)
def store(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, tmp_path: Path, embedder
) -> Iterator[QdrantStore | QdrantEdgeStore]:
    from rag.factory import build_store

    settings = make_settings(tmp_path)
    if request.param != "server":
        settings.qdrant.embedded_engine = request.param
    store = build_store(settings)
    assert isinstance(store, QdrantEdgeStore) == (request.param == "edge")
    sparse = Bm25Encoder()
    store.ensure_collection("docs", embedder.dimension)
    store.index_fields("docs", merge_field_types({}, _chunks("a", ["x"])[0].metadata))
    for doc, texts in TEXTS.items():
        store.upsert(
            _chunks(doc, texts),
            embedder.embed_documents(texts),
            [sparse.encode_document(t) for t in texts],
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


FIELDS = merge_field_types(
    {}, {"team": "eng", "published": "2024-03-01", "score": 0.5, "draft": False, "tags": ["x"]}
)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"team": "ops"}, {"b"}),
        ({"source": ["a.md", "b.md"]}, {"a", "b"}),
        ({"team": {"any": ["eng", "hr"]}}, {"a"}),
        ({"tags": "support"}, {"b"}),  # a list field matches when one item does
        ({"tags": ["backend", "nothing"]}, {"a"}),
        ({"draft": True}, {"b"}),
        ({"score": 2.25}, {"b"}),
        ({"score": {"gt": 1}}, {"b"}),
        ({"score": {"gte": 0.5, "lt": 2}}, {"a"}),
        ({"page": {"gte": 1}}, set()),  # no chunk has a page
        ({"document_id": "a"}, {"a"}),
        ({"published": {"gte": "2025-01-01"}}, {"b"}),
        ({"published": {"lt": "2024-12-31T23:59:59+00:00"}}, {"a"}),
        ({"published": {"gte": "2024-01-01", "lte": "2025-12-31"}}, {"a", "b"}),
        ({"team": "eng", "draft": True}, set()),  # all conditions must hold
    ],
)
def test_filter_operators(store: QdrantStore, embedder, filters, expected) -> None:  # type: ignore[no-untyped-def]
    conditions = parse_filters(filters, FIELDS)
    hits = _search(store, embedder, "Rust", filters=conditions)
    assert {h.chunk.document_id for h in hits} == expected


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_hybrid_fusions_rank_the_exact_passage_first(store: QdrantStore, embedder, fusion) -> None:  # type: ignore[no-untyped-def]
    hits = _search(store, embedder, "Severity 1 incidents", fusion=fusion)
    assert hits[0].chunk.text == TEXTS["b"][0]
    assert hits[0].vector is not None and len(hits[0].vector) == embedder.dimension


def test_upsert_is_idempotent_and_delete_removes_old_versions(store: QdrantStore, embedder) -> None:  # type: ignore[no-untyped-def]
    assert store.count("docs") == 4
    chunk = Chunk(id=chunk_id("a", 0), document_id="a", collection="docs", index=0, text="x")
    store.upsert([chunk], embedder.embed_documents(["x"]), [Bm25Encoder().encode_document("x")])
    assert store.count("docs") == 4  # same id: overwritten, not duplicated
    new = Chunk(id=chunk_id("a", 0, 1), document_id="a", collection="docs", index=0, text="y")
    new.version = 1
    store.upsert([new], embedder.embed_documents(["y"]), [Bm25Encoder().encode_document("y")])
    assert store.count("docs", "a") == 3  # the new version next to the old one
    store.delete_document("docs", "a", before_version=1)
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


# The edge engine: what an embedded store must also do. ------------------------------------------


def _edge_store(path: Path, embedder) -> QdrantEdgeStore:  # type: ignore[no-untyped-def]
    store = QdrantEdgeStore(path=path, prefix="t_")
    store.ensure_collection("docs", embedder.dimension)
    return store


def test_edge_store_keeps_its_points_across_a_reopen(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    sparse = Bm25Encoder()
    store = _edge_store(tmp_path / "q", embedder)
    for doc, texts in TEXTS.items():
        store.upsert(
            _chunks(doc, texts),
            embedder.embed_documents(texts),
            [sparse.encode_document(t) for t in texts],
        )
    before = _search(store, embedder, "Severity 1 incidents", mode="sparse")
    store.close()

    reopened = QdrantEdgeStore(path=tmp_path / "q", prefix="t_")
    try:
        assert reopened.count("docs") == 4 and reopened.count("docs", "b") == 2
        after = _search(reopened, embedder, "Severity 1 incidents", mode="sparse")
        assert [(h.chunk.id, round(h.score, 5)) for h in after] == [
            (h.chunk.id, round(h.score, 5)) for h in before
        ]  # the keyword statistics (IDF) came back with the points
        assert after[0].chunk.metadata["tags"] == ["support"] and after[0].vector is not None
        reopened.drop_collection("docs")
        assert not (tmp_path / "q" / "edge" / "t_docs").exists()
    finally:
        reopened.close()
    assert QdrantEdgeStore(path=tmp_path / "q", prefix="t_").count("docs") == 0


def test_edge_store_held_by_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; "
            "from rag.stores.qdrant_edge import QdrantEdgeStore; "
            f"s = QdrantEdgeStore(path=Path({str(tmp_path / 'q')!r})); s.ping(); "
            "print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = QdrantEdgeStore(path=tmp_path / "q")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(BackendUnavailable, match="QDRANT_URL"):
            store.ping()
        with pytest.raises(BackendUnavailable, match="in use by another process"):
            store.count("docs")
    finally:
        holder.kill()
        holder.wait()
    store.ping()  # the lock goes with the process that held it
    store.close()


def test_edge_store_serves_searches_while_a_thread_writes(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """The API and the in-process worker share one store: searches go on during upserts."""
    sparse = Bm25Encoder()
    store = _edge_store(tmp_path / "q", embedder)
    texts = [f"Runbook {i}: restart the fleet controller on node {i}." for i in range(40)]
    dense, keywords = embedder.embed_documents(texts), [sparse.encode_document(t) for t in texts]
    question = (embedder.embed_query("restart the fleet controller"), sparse.encode_query("fleet"))
    errors: list[BaseException] = []
    writing = threading.Event()

    def write() -> None:
        try:
            for start in range(0, len(texts), 4):
                for doc, version in (("w1", 0), ("w2", start // 4)):
                    chunks = [
                        Chunk(
                            id=chunk_id(doc, i, version),
                            document_id=doc,
                            collection="docs",
                            index=i,
                            version=version,
                            text=texts[i],
                        )
                        for i in range(start, start + 4)
                    ]
                    store.upsert(chunks, dense[start : start + 4], keywords[start : start + 4])
                    if doc == "w2":  # each batch replaces w2's previous version
                        store.delete_document("docs", "w2", before_version=version)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            writing.set()

    def read() -> None:
        try:
            while not writing.is_set():
                for mode in ("dense", "sparse", "hybrid"):
                    hits = store.search(
                        "docs",
                        dense=question[0],
                        sparse=question[1],
                        mode=mode,
                        limit=3,  # type: ignore[arg-type]
                    )
                    assert all(h.vector is not None and h.similarity is not None for h in hits)
                store.count("docs", "w1")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert store.count("docs", "w1") == 40 and store.count("docs", "w2") == 4
        hits = store.search("docs", dense=question[0], sparse=question[1], mode="hybrid", limit=3)
        assert hits and hits[0].chunk.document_id in {"w1", "w2"}
    finally:
        store.close()


def test_access_lists_filter_inside_the_search_and_older_chunks_are_upgraded(  # type: ignore[no-untyped-def]
    store: QdrantStore, embedder
) -> None:
    from rag.access import principal_tokens, readable_by

    def found(groups: list[str]) -> set[str]:
        hits = _search(
            store,
            embedder,
            "fleet warehouse",
            filters=[readable_by(principal_tokens(groups))],
            limit=10,
        )
        return {h.chunk.document_id for h in hits}

    assert found([]) == {"a", "b"}  # written readable by everyone
    store.set_access("docs", "a", ["group:eng"])
    assert found(["ops"]) == {"b"} and found(["eng"]) == {"a", "b"}
    old = _chunks("c", ["The old warehouse note."])
    old[0].access = []  # as written before access lists existed
    store.upsert(
        old, embedder.embed_documents([old[0].text]), [Bm25Encoder().encode_document(old[0].text)]
    )
    assert "c" not in found([])
    assert store.upgrade("docs") == 1
    assert "c" in found([]) and store.upgrade("docs") == 0


def test_a_documents_chunks_are_read_in_order_for_those_who_may_read_them(  # type: ignore[no-untyped-def]
    store: QdrantStore, embedder
) -> None:
    from rag.access import principal_tokens

    chunks = store.document_chunks("docs", "a", access=None)
    assert [c.text for c in chunks] == TEXTS["a"]
    assert chunks[0].source == "a.md" and chunks[0].metadata["tags"] == ["rust", "backend"]
    assert store.document_chunks("docs", "nothing", access=None) == []
    assert store.document_chunks("nowhere", "a", access=None) == []

    # Only readers see it: the same filter as search, inside the store.
    store.set_access("docs", "a", ["group:eng"])
    assert store.document_chunks("docs", "a", access=principal_tokens(["ops"])) == []
    assert len(store.document_chunks("docs", "a", access=principal_tokens(["eng"]))) == 2

    # Past a page of the scroll, and mid-replacement (both versions stored): the newest, in order.
    vector, sparse = embedder.embed_documents(["x"])[0], Bm25Encoder().encode_document("x")
    long = [
        Chunk(
            id=chunk_id("long", i, v), document_id="long", collection="docs", index=i, text=str(i)
        )
        for v, n in ((0, 3), (1, 300))
        for i in range(n)
    ]
    for c in long[3:]:
        c.version = 1
    store.upsert(long[::-1], [vector] * len(long), [sparse] * len(long))
    chunks = store.document_chunks("docs", "long", access=principal_tokens([]))
    assert [(c.version, c.text) for c in chunks] == [(1, str(i)) for i in range(300)]

"""The edge store's background index build (`rag.stores.edge_index`) on the real engine: writes
made during a build reach the new shard, searches go on, and a crash or a drop at any point
loses nothing and leaves nothing behind."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.models import Chunk, SparseVector
from rag.stores import edge_index
from rag.stores.qdrant_edge import QdrantEdgeStore

DIM = 16
THRESHOLD = 200


def _store(path: Path, threshold: int = THRESHOLD) -> QdrantEdgeStore:
    store = QdrantEdgeStore(path=path, prefix="t_", index_threshold=threshold)
    store.ensure_collection("docs", DIM)
    return store


def _add(store: QdrantEdgeStore, doc: str, n: int = 100) -> None:
    rng = np.random.default_rng(int(doc[1:]))
    chunks = [
        Chunk(
            id=f"{int(doc[1:]) * 1000 + i:032x}",
            document_id=doc,
            collection="docs",
            index=i,
            text=f"{doc} chunk {i}",
            source=f"{doc}.md",
        )
        for i in range(n)
    ]
    dense = rng.standard_normal((n, DIM)).tolist()
    store.upsert(chunks, dense, [SparseVector(indices=[i % 50], values=[1.0]) for i in range(n)])


def _search(store: QdrantEdgeStore) -> int:
    hits = store.search(
        "docs",
        dense=[1.0] * DIM,
        sparse=SparseVector(indices=[1], values=[1.0]),
        mode="hybrid",
        limit=5,
    )
    return len(hits)


def _wait_for_the_build(store: QdrantEdgeStore, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while store.indexer.building("docs"):
        assert time.monotonic() < deadline, "the index build did not finish"
        time.sleep(0.05)


def _leftovers(path: Path) -> list[str]:
    return sorted(
        p.name for p in (path / "edge").iterdir() if p.name.endswith((".building", ".retired"))
    )


@pytest.mark.parametrize("locked", [0, 16], ids=["replayed-while-writes-go-on", "replayed-locked"])
def test_writes_made_during_a_build_reach_the_new_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked: int
) -> None:
    monkeypatch.setattr(edge_index, "_REPLAY_LOCKED", locked)  # writes left for the locked pass
    store = _store(tmp_path / "q")
    errors: list[BaseException] = []
    searches = 0
    try:
        _add(store, "d0")
        assert not store.indexer.building("docs")  # 100 points: under the threshold
        _add(store, "d1")
        assert store.indexer.building("docs")  # 200: the build started

        stop = threading.Event()

        def search_all_along() -> None:
            nonlocal searches
            while not stop.is_set():
                try:
                    assert _search(store) == 5
                    searches += 1
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        searcher = threading.Thread(target=search_all_along)
        searcher.start()
        _add(store, "d2")  # during the build: journalled
        store.delete_document("docs", "d0")
        store.set_access("docs", "d1", ["group:ops"])
        during = store.indexer.building("docs")
        _wait_for_the_build(store)
        stop.set()
        searcher.join()

        assert during, "the writes above were meant to land while the index was being built"
        assert not errors, errors
        assert searches > 0
        assert edge_index.indexed_points(store.folder("docs")) >= 200
        assert _leftovers(tmp_path / "q") == []
        _check_contents(store)
    finally:
        store.close()
    reopened = _store(tmp_path / "q")
    try:
        _check_contents(reopened)
        _add(reopened, "d3")  # 300 points, 100 more than were indexed: no second build yet
        assert not reopened.indexer.building("docs")
    finally:
        reopened.close()


def _check_contents(store: QdrantEdgeStore) -> None:
    assert store.count("docs") == 200
    assert store.count("docs", "d0") == 0 and store.count("docs", "d2") == 100
    assert len(store.document_chunks("docs", "d1", access=["group:ops"])) == 100
    assert store.document_chunks("docs", "d1", access=["group:eng"]) == []
    assert _search(store) == 5


def test_a_swap_cut_short_is_undone_at_the_next_open(tmp_path: Path) -> None:
    store = _store(tmp_path / "q", threshold=0)
    _add(store, "d0")
    folder = store.folder("docs")
    store.close()
    retired = folder.with_name(folder.name + edge_index.RETIRED)
    building = folder.with_name(folder.name + edge_index.BUILDING)
    # The process died after the live shard's folder was retired, before the copy took its
    # place; or after the copy took its place, leaving the retired folder.
    folder.rename(retired)
    for leftover in (building, retired):
        (leftover / "segments").mkdir(parents=True, exist_ok=True)
        reopened = _store(tmp_path / "q", threshold=0)
        try:
            assert reopened.count("docs") == 100
            assert _leftovers(tmp_path / "q") == []
        finally:
            reopened.close()


def test_dropping_a_collection_mid_build_abandons_the_build(tmp_path: Path) -> None:
    store = _store(tmp_path / "q")
    try:
        _add(store, "d0", n=THRESHOLD)
        assert store.indexer.building("docs")
        store.drop_collection("docs")
        _wait_for_the_build(store)
        assert store.count("docs") == 0
        assert not store.folder("docs").exists() and _leftovers(tmp_path / "q") == []
    finally:
        store.close()


def test_closing_the_store_mid_build_loses_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "q")
    _add(store, "d0", n=THRESHOLD)
    assert store.indexer.building("docs")
    store.close()
    reopened = _store(tmp_path / "q")
    try:
        assert reopened.count("docs") == THRESHOLD
        assert _leftovers(tmp_path / "q") == []
    finally:
        reopened.close()


def test_a_failed_build_keeps_the_live_shard_and_waits_before_trying_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path / "q")
    # The child dies as one killed for its memory would, after the copy was made.
    command = store.indexer.command
    store.indexer.command = [sys.executable, "-c", "import sys; sys.exit('out of memory')"]
    try:
        with caplog.at_level(logging.ERROR, logger="rag.stores.edge_index"):
            _add(store, "d0", n=THRESHOLD)
            _wait_for_the_build(store)
        assert "out of memory" in caplog.text
        assert store.count("docs") == THRESHOLD and _search(store) == 5
        assert _leftovers(tmp_path / "q") == []
        _add(store, "d1")  # not at the next write...
        assert not store.indexer.building("docs")
        store.indexer.command = command
        _add(store, "d2")  # ...but once as many points again were added
        assert store.indexer.building("docs")
        _wait_for_the_build(store)
        assert edge_index.indexed_points(store.folder("docs")) == 2 * THRESHOLD
    finally:
        store.close()

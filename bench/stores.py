"""Embedded stores side by side: qdrant-client's local mode against Qdrant Edge, same data.

Synthetic points (unit 384-d vectors, Zipf-distributed keyword vectors, ~600-character texts)
go straight into each store, so the figures are the store's alone: upsert throughput, memory
(the process's RSS growth), p50 search latency per mode (top 5, sequential) at each size, and
the time to close and reopen.

    .venv/bin/python bench/stores.py [--sizes 10000,50000] [--engines edge,local]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import _common as c

c.prepare_env()  # puts the project on the path

import numpy as np  # noqa: E402

from rag.models import Chunk, SparseVector  # noqa: E402
from rag.stores.qdrant import QdrantStore  # noqa: E402
from rag.stores.qdrant_edge import QdrantEdgeStore  # noqa: E402

DIM, VOCAB, COLLECTION = 384, 30_000, "bench"
Store = QdrantStore | QdrantEdgeStore


def make_store(engine: str, path: Path) -> Store:
    return QdrantEdgeStore(path=path) if engine == "edge" else QdrantStore(path=path)


def terms(rng: np.random.Generator, n: int) -> SparseVector:
    ids = np.unique(np.minimum(rng.zipf(1.2, n), VOCAB))
    return SparseVector(indices=ids.tolist(), values=rng.uniform(0.5, 2.0, len(ids)).tolist())


def fill(store: Store, rng: np.random.Generator, start: int, stop: int, batch: int) -> None:
    for first in range(start, stop, batch):
        ids = range(first, min(first + batch, stop))
        dense = rng.standard_normal((len(ids), DIM)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        chunks = [
            Chunk(
                id=f"00000000-0000-4000-8000-{i:012d}",
                document_id=f"doc{i // 20}",
                collection=COLLECTION,
                index=i % 20,
                text="lorem ipsum " * 50,
                source=f"doc{i // 20}.md",
                metadata={"team": ["eng", "ops", "hr"][i % 3]},
            )
            for i in ids
        ]
        store.upsert(chunks, dense.tolist(), [terms(rng, 40) for _ in ids])


def p50_ms(store: Store, rng: np.random.Generator, mode: str, n: int, budget_s: float) -> str:
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < n and (len(times) < 5 or time.perf_counter() < deadline):
        query = rng.standard_normal(DIM)
        query /= np.linalg.norm(query)
        sparse = terms(rng, 6)
        sparse.values = [1.0] * len(sparse.indices)
        t = time.perf_counter()
        store.search(COLLECTION, dense=query.tolist(), sparse=sparse, mode=mode, limit=5)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    return f"{statistics.median(times):8.1f} ms (n={len(times)})"


def run(engine: str, args: argparse.Namespace, data_dir: Path) -> None:
    rng = np.random.default_rng(0)
    before_mib = c.rss_mib()
    store = make_store(engine, data_dir / engine)
    store.ensure_collection(COLLECTION, DIM)
    c.header(f"{engine}: {store.location}")
    count = 0
    for size in sorted(int(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        fill(store, rng, count, size, args.batch)
        elapsed = time.perf_counter() - t
        print(f"  upsert {size - count} points: {elapsed:.1f}s ({(size - count) / elapsed:.0f}/s)")
        count = store.count(COLLECTION)
        grown = c.rss_mib() - before_mib
        print(f"  memory: +{grown:.0f} MiB RSS, {grown / count * 1e6:,.0f} MiB per million points")
        for mode in args.modes.split(","):
            print(f"  {count} points {mode:6s} p50 {p50_ms(store, rng, mode, args.queries, 20)}")
    store.close()
    t = time.perf_counter()
    reopened = make_store(engine, data_dir / engine)
    points = reopened.count(COLLECTION)  # the first call opens the store and its collection
    print(f"  reopen with {points} points: {time.perf_counter() - t:.2f}s", end="")
    disk = sum(f.stat().st_blocks * 512 for f in (data_dir / engine).rglob("*") if f.is_file())
    print(f"; {disk / 2**20:.0f} MiB on disk (allocated)")
    reopened.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="collection sizes, ascending")
    parser.add_argument("--engines", default="edge,local")
    parser.add_argument("--modes", default="dense,sparse,hybrid")
    parser.add_argument("--queries", type=int, default=100, help="at most, per mode and size")
    parser.add_argument("--batch", type=int, default=256, help="points per upsert")
    args = parser.parse_args()
    with c.scratch_dir("rag-bench-stores") as data_dir:
        for engine in args.engines.split(","):
            run(engine, args, data_dir)


if __name__ == "__main__":
    main()

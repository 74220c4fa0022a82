"""Latency of POST /v1/retrieve at growing collection sizes (embedded store by default), per
retrieval mode, next to the raw `embed_query` and `store.search` times of the same queries.

    .venv/bin/python bench/query.py [--sizes 10000,50000] [--queries 200] [--modes dense,sparse]

The collection is filled directly (no parsing, no queue): SciFact abstracts split into ~100-200
token pieces; `--unique` of them are embedded for real, and the other points reuse those vectors
with a small random perturbation (renormalised), which is much faster on a small CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c

c.prepare_env()  # before any api/ingest/rag import

import numpy as np  # noqa: E402

COLLECTION = "scifact"


@dataclass
class Piece:
    doc: str
    index: int
    title: str
    text: str


def split_abstracts(abstracts: list[dict[str, Any]], max_words: int) -> list[Piece]:
    """Whole sentences packed into pieces of at most ~max_words words (~1.5 tokens a word)."""
    pieces = []
    for a in abstracts:
        groups: list[list[str]] = [[]]
        words = 0
        for sentence in re.split(r"(?<=[.!?])\s+", a["text"].strip()):
            n = len(sentence.split())
            if groups[-1] and words + n > max_words:
                groups.append([])
                words = 0
            groups[-1].append(sentence)
            words += n
        pieces += [Piece(a["_id"], i, a["title"], " ".join(g)) for i, g in enumerate(groups) if g]
    return pieces


def fill(
    rt: Any,
    unique: list[Piece],
    base: Any,
    stop: int,
    args: argparse.Namespace,
    access_of: Callable[[int], list[str]] | None = None,
) -> None:
    """Upsert points until the collection holds `stop`; point i copies unique piece i % len
    (and has the access list `access_of(i)`, everyone by default)."""
    from rag.chunking import chunk_id
    from rag.models import Chunk

    rng = np.random.default_rng(len(unique) + stop)
    sparse = [rt.sparse.encode_document(p.text) for p in unique]
    start = rt.store.count(COLLECTION)
    for lo in range(start, stop, args.upsert_batch):
        ids = np.arange(lo, min(lo + args.upsert_batch, stop))
        js, reps = ids % len(unique), ids // len(unique)
        noise = rng.normal(0, args.noise, (len(ids), base.shape[1]))
        vectors = base[js] + (reps > 0)[:, None] * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = []
        for i, j, rep in zip(ids.tolist(), js.tolist(), reps.tolist(), strict=True):
            p, doc = unique[j], f"sf{unique[j].doc}-r{rep}"
            chunks.append(
                Chunk(
                    id=chunk_id(doc, p.index),
                    document_id=doc,
                    collection=COLLECTION,
                    index=p.index,
                    text=p.text,
                    source=f"scifact/{p.doc}.txt",
                    title=p.title,
                    token_count=int(len(p.text.split()) * 1.5),
                    access=access_of(i) if access_of else ["*"],
                )
            )
        rt.store.upsert(chunks, vectors.tolist(), [sparse[j] for j in js.tolist()])


def building(rt: Any) -> bool:
    """An index build of the edge store is running (`rag.stores.edge_index`)."""
    indexer = getattr(rt.store, "indexer", None)
    return indexer is not None and indexer.building(COLLECTION)


def wait_for_index(rt: Any) -> float:
    started = time.perf_counter()
    while building(rt):
        time.sleep(0.2)
    return time.perf_counter() - started


def recall(rt: Any, queries: list[str], n: int = 50) -> tuple[float, float]:
    """The store's dense top 10 against exact search on the same shard, averaged over queries:
    of the points, and of the passages (a perturbed copy stands for its original)."""
    import qdrant_edge as qe

    from rag.models import SparseVector
    from rag.stores._qdrant_common import DENSE

    shard, points, passages = rt.store.current(COLLECTION), [], []
    for q in queries[:n]:
        dense = rt.embedder.embed_query(q)
        hits = rt.store.search(
            COLLECTION,
            dense=dense,
            sparse=SparseVector(indices=[], values=[]),
            mode="dense",
            limit=10,
        )
        request = qe.QueryRequest(
            limit=10,
            query=qe.Query.Nearest(dense, using=DENSE),
            params=qe.SearchParams(exact=True),
            with_payload=True,
        )
        exact = shard.query(request)
        ids = [{h.chunk.id for h in hits}, {str(p.id) for p in exact}]
        texts = [{h.chunk.text for h in hits}, {p.payload["text"] for p in exact}]
        points.append(len(ids[0] & ids[1]) / 10)
        passages.append(len(texts[0] & texts[1]) / len(texts[1]))
    return float(np.mean(points)), float(np.mean(passages))


def recorded(caught: list[warnings.WarningMessage]) -> str:
    return "; ".join(f"{w.category.__name__}: {w.message}" for w in caught) or "none"


async def measure(
    client: Any, rt: Any, mode: str, queries: list[str], args: argparse.Namespace
) -> tuple[float, float]:
    """Time the API, then the same work without it; return the two p50s in seconds."""
    body = {"collection": COLLECTION, "mode": mode, "top_k": 5}
    for q in queries[:2]:  # warm-up, not counted
        (await client.post("/v1/retrieve", json={**body, "question": q})).raise_for_status()
    api, server = [], []
    for q in c.within_budget(queries, args.budget_s, args.min_queries):
        t = time.perf_counter()
        response = await client.post("/v1/retrieve", json={**body, "question": q})
        api.append(time.perf_counter() - t)
        response.raise_for_status()
        server.append(response.json()["retrieval_ms"] / 1000)
    embed, search = [], []
    for q in c.within_budget(queries[: len(api)], args.budget_s, args.min_queries):
        t0 = time.perf_counter()
        dense, sparse = rt.embedder.embed_query(q), rt.sparse.encode_query(q)
        t1 = time.perf_counter()
        rt.store.search(COLLECTION, dense=dense, sparse=sparse, mode=mode, limit=5)
        embed.append(t1 - t0)
        search.append(time.perf_counter() - t1)
    print(f"  {mode:6s} API round trip      {c.summary_ms(api)}")
    print(f"  {'':6s} server retrieval_ms {c.summary_ms(server)}")
    print(f"  {'':6s} raw embed_query+bm25 {c.summary_ms(embed)}")
    print(f"  {'':6s} raw store.search    {c.summary_ms(search)}")
    raw = np.median(np.add(embed, search))
    return float(np.median(api)), float(raw)


def corpus(
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], list[Piece], list[Piece], list[str]]:
    """SciFact abstracts, their pieces, the `--unique` pieces embedded for real, the queries."""
    abstracts = c.load_jsonl(c.SCIFACT / "corpus.jsonl")
    pieces = split_abstracts(abstracts, args.max_words)
    rng = np.random.default_rng(0)
    unique = [pieces[i] for i in sorted(rng.choice(len(pieces), args.unique, replace=False))]
    texts = [q["text"] for q in c.load_jsonl(c.SCIFACT / "queries.jsonl")]
    return abstracts, pieces, unique, texts


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    abstracts, pieces, unique, texts = corpus(args)
    queries = [texts[i % len(texts)] for i in range(args.queries)]
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"{len(pieces)} pieces from {len(abstracts)} abstracts; {len(unique)} embedded for real,")
    print(f"the rest are perturbed copies of them (noise sigma {args.noise}, renormalised)")

    # Retrieval latency, not the per-key rate limit (bench/auth.py measures that): queries at
    # 30 ms run past its 600 a minute.
    unlimited = {"query_rate": {"per_minute": 0, "burst": 60}}
    async with c.running_app(c.bench_settings(data_dir, auth=unlimited)) as (app, client):
        rt = app.state.runtime
        print(f"store {rt.store.location}; queue {c.QUEUE}")
        rt.catalog.create_collection(COLLECTION, "bench", rt.embedder.dimension)
        t = time.perf_counter()
        base = np.asarray(rt.embedder.embed_documents([p.text for p in unique]), dtype=np.float32)
        elapsed = time.perf_counter() - t
        print(f"embedded {len(unique)} pieces in {elapsed:.1f}s ({len(unique) / elapsed:.1f}/s)")
        print(f"up to {len(queries)} queries per mode, sequential, top_k 5; each loop stops after")
        print(f"{args.budget_s:.0f}s once {args.min_queries} are done (n= says how many ran)")

        filling = 0.0  # upsert time so far, all sizes
        for size in sizes:
            before, t = rt.store.count(COLLECTION), time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fill(rt, unique, base, size, args)
            step = time.perf_counter() - t
            filling += step
            count = rt.store.count(COLLECTION)
            c.header(f"{count} points")
            print(
                f"  upserted +{count - before} in {step:.1f}s ({(count - before) / step:.0f}/s);",
                end="",
            )
            print(f" {count} loaded in {filling:.1f}s in all")
            print(f"  warnings while upserting: {recorded(caught)}")
            if building(rt):
                print("  an index build is running: hybrid while it runs (searched exactly)")
                await measure(client, rt, "hybrid", queries, args)
                settle = wait_for_index(rt)
                print(f"  index builds finished {settle:.1f}s after the last upsert")
                points, passages = recall(rt, queries)
                print(f"  dense top 10 from the index against exact: {points:.3f} of the points,")
                print(f"  {passages:.3f} of the passages")
            p50s = {m: await measure(client, rt, m, queries, args) for m in args.modes.split(",")}
            for mode, (api_p50, raw_p50) in p50s.items():
                print(f"  {mode:6s} API p50 / raw (embed + search) p50 = {api_p50 / raw_p50:.2f}")

        c.header("embedded store: close and reopen (qdrant-client loads every point)")
        rt.store.close()
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rt.store.ping()
        reopen = time.perf_counter() - t
        disk = sum(f.stat().st_size for f in rt.settings.qdrant_path.rglob("*") if f.is_file())
        print(f"  reopen with {rt.store.count(COLLECTION)} points: {reopen:.1f}s", end="")
        print(f"; {disk / 2**20:.0f} MiB on disk\n  warnings on reopen: {recorded(caught)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="collection sizes, ascending")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--modes", default="dense,hybrid,sparse")
    parser.add_argument("--budget-s", type=float, default=15, help="time limit of each loop")
    parser.add_argument("--min-queries", type=int, default=10, help="run at least this many")
    run_with_corpus(parser, "rag-bench-query", run)


def run_with_corpus(
    parser: argparse.ArgumentParser,
    scratch: str,
    run: Callable[[argparse.Namespace, Path], Awaitable[None]],
) -> None:
    """Add the options of `fill` (the synthetic SciFact corpus), then run in a scratch folder."""
    parser.add_argument("--unique", type=int, default=500, help="pieces embedded for real")
    parser.add_argument("--max-words", type=int, default=110, help="words per piece (~1.5 tok)")
    parser.add_argument("--noise", type=float, default=0.01, help="perturbation sigma per dim")
    parser.add_argument("--upsert-batch", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    with c.scratch_dir(scratch) as data_dir:
        asyncio.run(run(args, data_dir))
    print(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

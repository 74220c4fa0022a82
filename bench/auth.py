"""Cost of authentication and the document-permission filter on POST /v1/retrieve.

    .venv/bin/python bench/auth.py [--size 20000] [--rounds 5] [--per-round 40]

One app, one collection (SciFact pieces; a third readable by everyone, the rest split between
four groups), three ways of calling it, interleaved round by round so that the machine's noise
falls on all of them alike:
  off       auth.enabled = false: no key, no rate limit, no filter (the baseline)
  admin     an admin key: key lookup + rate limit (Redis) + audit, no permission filter
  filtered  a key of two groups: all of the above + the access filter inside the search
Prints p50/p95 of each and the ratios to the baseline (target: filtered <= 1.10).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common as c

c.prepare_env()  # before any api/ingest/rag import

import numpy as np  # noqa: E402
from query import COLLECTION, corpus, fill, run_with_corpus  # noqa: E402

GROUPS = ["oncology", "cardiology", "neurology", "genetics"]


def access_of(i: int) -> list[str]:
    return ["*"] if i % 3 == 0 else [f"group:{GROUPS[i % len(GROUPS)]}"]


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    _, _, unique, texts = corpus(args)

    async with c.running_app(c.bench_settings(data_dir)) as (app, client):
        rt = app.state.runtime
        rt.catalog.create_collection(COLLECTION, "bench", rt.embedder.dimension)
        base = np.asarray(rt.embedder.embed_documents([p.text for p in unique]), dtype=np.float32)
        fill(rt, unique, base, args.size, args, access_of=access_of)
        print(f"{rt.store.count(COLLECTION)} points; store {rt.store.location}; mode {args.mode}")
        unlimited = {"query_per_minute": 1e9}  # the limiter still runs, it never refuses
        admin = rt.keys.create("bench-admin", ["admin"], **unlimited).key
        reader = rt.keys.create("bench-reader", ["query"], groups=GROUPS[:2], **unlimited).key
        ways: dict[str, dict[str, str] | None] = {
            "off": None,
            "admin": {"Authorization": f"Bearer {admin}"},
            "filtered": {"Authorization": f"Bearer {reader}"},
        }
        times: dict[str, list[float]] = {way: [] for way in ways}
        body = {"collection": COLLECTION, "mode": args.mode, "top_k": 5}

        async def call(way: str, question: str) -> float:
            rt.settings.auth.enabled = ways[way] is not None
            headers = ways[way] or {"Authorization": ""}
            t = time.perf_counter()
            response = await client.post(
                "/v1/retrieve", json={**body, "question": question}, headers=headers
            )
            elapsed = time.perf_counter() - t
            response.raise_for_status()
            assert response.json()["hits"], response.text
            return elapsed

        for way in ways:  # warm-up, not counted
            await call(way, texts[0])
        for r in range(args.rounds):
            first = r * args.per_round
            questions = [texts[(first + i) % len(texts)] for i in range(args.per_round)]
            for way in ways:
                times[way] += [await call(way, q) for q in questions]
        rt.settings.auth.enabled = True
        c.header(f"POST /v1/retrieve, {args.rounds} rounds x {args.per_round} queries per way")
        for way, samples in times.items():
            print(f"  {way:9s} {c.summary_ms(samples)}")
        p50 = {way: float(np.median(samples)) for way, samples in times.items()}
        print(f"  admin / off    p50 ratio = {p50['admin'] / p50['off']:.3f}")
        print(f"  filtered / off p50 ratio = {p50['filtered'] / p50['off']:.3f}  (target <= 1.10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="points in the collection")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--mode", default="hybrid")
    run_with_corpus(parser, "rag-bench-auth", run)


if __name__ == "__main__":
    main()

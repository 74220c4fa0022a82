"""What the OpenAI-compatible endpoint adds over POST /v1/query for the same question.

    .venv/bin/python bench/openai_compat.py [--size 5000] [--rounds 5] [--per-round 20]

One app, one collection (SciFact pieces), one key; the answering model is the extractive (no
LLM), so that the time measured is ours, not a model's. Per round, the same questions go to
  query    POST /v1/query
  openai   POST /openai/v1/chat/completions (model = the collection)
  stream   the same with "stream": true, read to [DONE]
interleaved so that the machine's noise falls on all alike. Prints p50/p95 of each and the p50
difference to /v1/query (target: openai - query <= 5 ms).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import _common as c

c.prepare_env()  # before any api/ingest/rag import

import numpy as np  # noqa: E402
from query import COLLECTION, corpus, fill, run_with_corpus  # noqa: E402


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    _, _, unique, texts = corpus(args)
    catalog = data_dir / "models.toml"
    catalog.write_text(c.EXTRACTIVE_CATALOG)
    settings = c.bench_settings(data_dir, generator={"catalog_file": catalog})
    async with c.running_app(settings) as (app, client):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
        rt = app.state.runtime
        rt.catalog.create_collection(COLLECTION, "bench", rt.embedder.dimension)
        base = np.asarray(rt.embedder.embed_documents([p.text for p in unique]), dtype=np.float32)
        fill(rt, unique, base, args.size, args)
        key = rt.keys.create("bench-openai", ["query"], query_per_minute=1e9).key
        headers = {"Authorization": f"Bearer {key}"}
        print(f"{rt.store.count(COLLECTION)} points; store {rt.store.location}")

        async def query(question: str) -> float:
            t = time.perf_counter()
            body = {"collection": COLLECTION, "question": question}
            response = await client.post("/v1/query", json=body, headers=headers)
            response.raise_for_status()
            return time.perf_counter() - t

        async def openai(question: str, stream: bool = False) -> float:
            t = time.perf_counter()
            messages = [{"role": "user", "content": question}]
            body = {"model": COLLECTION, "messages": messages, "stream": stream}
            url = "/openai/v1/chat/completions"
            async with client.stream("POST", url, json=body, headers=headers) as response:
                response.raise_for_status()
                text = (await response.aread()).decode()
            assert not stream or text.endswith("data: [DONE]\n\n"), text[-200:]
            return time.perf_counter() - t

        async def stream(question: str) -> float:
            return await openai(question, stream=True)

        ways = {"query": query, "openai": openai, "stream": stream}
        times: dict[str, list[float]] = {way: [] for way in ways}
        for call in ways.values():  # warm-up, not counted
            await call(texts[0])
        for r in range(args.rounds):
            first = r * args.per_round
            questions = [texts[(first + i) % len(texts)] for i in range(args.per_round)]
            for way, call in ways.items():
                times[way] += [await call(q) for q in questions]
        c.header(f"{args.rounds} rounds x {args.per_round} questions per way (extractive model)")
        for way, samples in times.items():
            print(f"  {way:7s} {c.summary_ms(samples)}")
        p50 = {way: float(np.median(samples)) * 1000 for way, samples in times.items()}
        print(f"  openai - query p50 = {p50['openai'] - p50['query']:+.1f} ms  (target <= 5 ms)")
        print(f"  stream - query p50 = {p50['stream'] - p50['query']:+.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000, help="points in the collection")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=20)
    run_with_corpus(parser, "rag-bench-openai", run)


if __name__ == "__main__":
    main()

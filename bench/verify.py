"""Deterministic verification speed: milliseconds per answer claim against 5 passages.

Each answer of bench/data/scifact-qa is checked against five SciFact abstracts (its own and
the next four in the corpus), each with its embedding precomputed as the store returns it.
Per answer the clock covers `rag.verification.check.check`: splitting into claims, embedding
them, features, the fitted model and the rules, and building citations. The baseline, measured
in the same run on the same answers, is embedding those claims alone (the one model call
verification makes), so the ratio says how much the rest adds.

A verified stream (`IncrementalCheck`, issue 17) checks each sentence as it completes: its cost
per answer, fed word by word as a model writes, is printed against one check of the finished
answer, with the longest pause it adds after a sentence ends (the delay before it is shown).

    .venv/bin/python bench/verify.py [--answers 114] [--repeat 3]

Figures are printed, never asserted. Target (issue 16): at most 10 ms per claim.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _common as c

c.prepare_env()  # puts the project on the path

from rag.embedding.sentence_transformers import SentenceTransformerEmbedder  # noqa: E402
from rag.evaluation.beir import load_corpus  # noqa: E402
from rag.models import Chunk, ScoredChunk  # noqa: E402
from rag.verification import Verifier  # noqa: E402
from rag.verification.check import check  # noqa: E402
from rag.verification.claims import split_answer  # noqa: E402
from rag.verification.deterministic import DeterministicVerifier  # noqa: E402
from rag.verification.incremental import IncrementalCheck  # noqa: E402

QA = c.ROOT / "bench" / "data" / "scifact-qa" / "qa.jsonl"
PASSAGES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=114)
    parser.add_argument("--repeat", type=int, default=3, help="Timed rounds over the answers.")
    args = parser.parse_args()

    items = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    items = [i for i in items if i.get("answer")][: args.answers]
    corpus = load_corpus(c.SCIFACT / "corpus.jsonl")
    position = {doc.id: n for n, doc in enumerate(corpus)}
    embedder = SentenceTransformerEmbedder()
    verifier = DeterministicVerifier(embedder)

    cases = []
    for item in items:
        start = position[item["documents"][0]]
        docs = corpus[start : start + PASSAGES]
        chunks = [
            Chunk(
                id=d.id, document_id=d.id, collection="bench", index=0, text=d.text, title=d.title
            )
            for d in docs
        ]
        vectors = embedder.embed_documents([ch.embedding_text() for ch in chunks])
        hits = [
            ScoredChunk(chunk=ch, score=1.0, vector=v)
            for ch, v in zip(chunks, vectors, strict=True)
        ]
        claims = [cl.context for cl in split_answer(item["answer"], item["question"]).claims]
        cases.append((item["question"], item["answer"], hits, claims))

    check(cases[0][1], cases[0][2], verifier, cases[0][0])  # warm: model, stemmer, word list
    verify_ms: list[float] = []
    embed_ms: list[float] = []
    for _ in range(args.repeat):
        for question, answer, hits, claims in cases:  # interleaved: noise hits both alike
            t0 = time.perf_counter()
            embedder.embed_documents(claims)
            t1 = time.perf_counter()
            check(answer, hits, verifier, question)
            t2 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000 / len(claims))
            verify_ms.append((t2 - t1) * 1000 / len(claims))

    def line(name: str, values: list[float]) -> str:
        q = statistics.quantiles(values, n=20)
        return f"{name:<28} p50 {statistics.median(values):6.2f} ms  p95 {q[18]:6.2f} ms"

    claims_total = sum(len(case[3]) for case in cases)
    print(
        f"{len(cases)} answers, {claims_total} claims, {PASSAGES} passages each, "
        f"{args.repeat} rounds; per claim:"
    )
    print(line("verification (check)", verify_ms))
    print(line("baseline: embed claims only", embed_ms))
    ratio = statistics.median(verify_ms) / statistics.median(embed_ms)
    print(f"ratio verification / embedding: {ratio:.2f}")
    _stream(cases, verifier)


def _stream(cases: list[tuple[str, str, list[ScoredChunk], list[str]]], verifier: Verifier) -> None:
    once_ms, stream_ms, pause_ms = [], [], []
    for question, answer, hits, _ in cases:
        t0 = time.perf_counter()
        check(answer, hits, verifier, question)
        once_ms.append((time.perf_counter() - t0) * 1000)
        incremental, pauses = IncrementalCheck(hits, verifier, question), [0.0]
        t0 = time.perf_counter()
        for word in answer.split(" "):
            t1 = time.perf_counter()
            incremental.feed(word + " ")
            pauses.append((time.perf_counter() - t1) * 1000)
        incremental.finish(answer)
        stream_ms.append((time.perf_counter() - t0) * 1000)
        pause_ms.append(max(pauses))
    print(f"verified stream, per answer ({len(cases)} answers, fed word by word):")
    for name, values in (
        ("one check at the end", once_ms),
        ("stream: all checks", stream_ms),
        ("stream: longest pause", pause_ms),
    ):
        print(f"  {name:<26} p50 {statistics.median(values):6.1f} ms  max {max(values):6.1f} ms")
    ratio = statistics.median(stream_ms) / statistics.median(once_ms)
    print(f"ratio stream / one check: {ratio:.2f}")


if __name__ == "__main__":
    main()

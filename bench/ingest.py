"""Ingest throughput end to end (REST upload → Redis queue → in-process worker → Qdrant) versus a
raw torch `SentenceTransformer.encode` of the same chunks and LlamaIndex's `IngestionPipeline`
on the same files, all in one run; then the same folder again, unchanged.

    .venv/bin/python bench/ingest.py [--docs 1000] [--source scifact|samples] [--batch 16]
                                     [--concurrency N] [--steps] [--no-anchor]

One job for the whole folder (the first upload creates it, the others add to it), as
`rag ingest` does. --steps also times each stage one document at a time in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import _common as c

c.prepare_env()  # before any api/ingest/rag import


def build_scifact_docs(folder: Path, n_docs: int, min_words: int, max_words: int) -> list[Path]:
    """Group consecutive abstracts into documents of about min..max words; alternate .md/.txt."""
    abstracts = c.load_jsonl(c.SCIFACT / "corpus.jsonl")
    paths: list[Path] = []
    group: list[dict[str, Any]] = []
    words = 0
    for abstract in abstracts:
        n = len(abstract["text"].split())
        if group and words + n > max_words:
            group, words = [], 0  # would overshoot: start over from this abstract
        group.append(abstract)
        words += n
        if words < min_words:
            continue
        markdown = len(paths) % 2 == 0
        parts = [
            f"# {a['title']}\n\n{a['text']}" if markdown else f"{a['title']}\n\n{a['text']}"
            for a in group
        ]
        path = folder / f"scifact-{len(paths):04d}.{'md' if markdown else 'txt'}"
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        paths.append(path)
        group, words = [], 0
        if len(paths) == n_docs:
            break
    return paths


async def pipeline(client: Any, files: list[Path], batch: int) -> tuple[float, Any]:
    """Upload in batches into one job, wait for it. Returns (wall seconds, the job)."""
    start = time.perf_counter()
    job_id = None
    for group in c.batched(files, batch):
        form = [("files", (p.name, p.read_bytes())) for p in group]
        params = {"job_id": job_id} if job_id else {}
        response = await client.post("/v1/collections/bench/documents", files=form, params=params)
        response.raise_for_status()
        job_id = response.json()["id"]
    uploaded = time.perf_counter() - start
    (job,) = await c.wait_for_jobs(client, [job_id])
    wall = time.perf_counter() - start
    print(f"uploads accepted in {uploaded:.2f}s ({len(files) // batch + 1} requests, one job)")
    return wall, job


def rechunk(rt: Any, files: list[Path], sw: c.Stopwatch) -> list[list[Any]]:
    """Parse and chunk each document as the worker does (chunk ids as if in collection "steps")."""
    from rag.parsing import parse_file

    per_doc = []
    for i, path in enumerate(files):
        with sw("parse"):
            elements = parse_file(path, filename=path.name)
        with sw("chunk"):
            per_doc.append(
                rt.chunker.chunk(
                    elements, document_id=f"d{i}", collection="steps", source=path.name, title=""
                )
            )
    return per_doc


def index_steps(rt: Any, per_doc: list[list[Any]], sw: c.Stopwatch) -> None:
    """Embed, sparse-encode and upsert one document at a time, into a scratch store collection."""
    for chunks in per_doc:
        texts = [chunk.embedding_text() for chunk in chunks]
        with sw("embed (per document)"):
            dense = rt.embedder.embed_documents(texts)
        with sw("sparse"):
            sparse = [rt.sparse.encode_document(text) for text in texts]
        with sw("upsert"):
            rt.store.ensure_collection("steps", len(dense[0]))
            rt.store.upsert(chunks, dense, sparse)
        with sw("delete old version"):
            rt.store.delete_document("steps", chunks[0].document_id, before_version=0)
    rt.store.drop_collection("steps")


def raw_encode(model: Any, texts: list[str]) -> float:
    """Chunks/s of one torch `SentenceTransformer.encode` call over all texts (the baseline)."""
    start = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - start)


def llama_index_pipeline(files: list[Path], scratch: Path) -> tuple[float, int]:
    """The anchor: LlamaIndex's IngestionPipeline (SentenceSplitter 256 → HuggingFaceEmbedding
    on the same packaged MiniLM → QdrantVectorStore, qdrant-client's local mode), defaults
    otherwise, reading the same files. Model loading is not timed. Returns (wall s, chunks)."""
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from rag.embedding import packaged_model_path

    embed = HuggingFaceEmbedding(model_name=packaged_model_path(), device="cpu")
    embed.get_text_embedding("warm up")
    client = QdrantClient(path=str(scratch / "llama-index-qdrant"))
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32), embed],
        vector_store=QdrantVectorStore(client=client, collection_name="anchor"),
    )
    start = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=[str(p) for p in files]).load_data()
    nodes = pipeline.run(documents=documents)
    wall = time.perf_counter() - start
    client.close()
    return wall, len(nodes)


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    docs_dir = data_dir / "docs"
    docs_dir.mkdir()
    if args.source == "samples":
        files = [Path(shutil.copy(p, docs_dir)) for p in sorted(c.SAMPLES.iterdir())]
    else:
        files = build_scifact_docs(docs_dir, args.docs, args.min_words, args.max_words)
    words = [len(p.read_text(errors="ignore").split()) for p in files]
    print(f"{len(files)} documents from {args.source}: {sum(words)} words", end="")
    print(f" ({min(words)}-{max(words)} per document); queue {c.QUEUE}")

    started = time.perf_counter()
    settings = c.bench_settings(data_dir / "rag")
    if args.concurrency:
        settings.worker.concurrency = args.concurrency
    async with c.running_app(settings) as (app, client):
        rt = app.state.runtime
        print(f"app up in {time.perf_counter() - started:.1f}s; store {rt.store.location}")
        for name in ("warmup", "bench"):  # creating a collection loads the embedding model
            (await client.post("/v1/collections", json={"name": name})).raise_for_status()
        t = time.perf_counter()  # one small job first: parser imports, first torch call
        form = [("files", (files[0].name, files[0].read_bytes()))]
        warm = await client.post("/v1/collections/warmup/documents", files=form)
        await c.wait_for_jobs(client, [warm.json()["id"]])
        print(f"warm-up job (1 document, not counted): {time.perf_counter() - t:.1f}s")

        from sentence_transformers import SentenceTransformer

        from rag.embedding import packaged_model_path

        torch_model = SentenceTransformer(packaged_model_path(), device="cpu")
        sw = c.Stopwatch()
        per_doc = rechunk(rt, files, sw)
        texts = [chunk.embedding_text() for chunks in per_doc for chunk in chunks]
        c.header("baseline: torch SentenceTransformer.encode of the same chunks, batch_size=32")
        raw_before = raw_encode(torch_model, texts)
        print(f"raw encode (before the pipeline): {len(texts)} chunks, {raw_before:.2f} chunks/s")

        c.header("pipeline: REST upload → queue → worker (parse, chunk, embed, upsert)")
        print(f"encoder: {type(rt.embedder).__name__} {rt.embedder.model_name}")
        wall, job = await pipeline(client, files, args.batch)
        listing = []
        while page := (
            await client.get(f"/v1/collections/bench/documents?limit=1000&offset={len(listing)}")
        ).json():
            listing += page
        chunks = sum(d["chunk_count"] for d in listing)
        print(f"{len(listing)} documents, {chunks} chunks, {job['counts']['failed']} failed")
        print(f"pipeline: wall {wall:.1f}s, {len(files) / wall:.2f} documents/s, ", end="")
        print(f"{chunks / wall:.2f} chunks/s (worker concurrency {settings.worker.concurrency})")

        c.header("the same folder again, unchanged: nothing may be parsed or embedded")
        embedded = rt.embedder.documents_embedded
        again, job = await pipeline(client, files, args.batch)
        print(f"re-ingest: wall {again:.2f}s, {job['counts']['skipped']} skipped, ", end="")
        print(f"{rt.embedder.documents_embedded - embedded} chunks embedded")
        print(f"re-ingest / first run = {100 * again / wall:.1f}% (target <= 5%)")

        if args.steps:
            c.header("same documents, same steps, timed one by one in this process (worker idle)")
            index_steps(rt, per_doc, sw)
            steps = sum(sw.totals.values())
            for stage, seconds in sw.totals.items():
                print(f"  {stage:22s} {seconds:7.2f}s  {100 * seconds / steps:5.1f}%")
            print(f"  {'sum of steps':22s} {steps:7.2f}s  ({len(texts)} chunks re-chunked)")

        if not args.no_anchor:
            c.header("anchor: LlamaIndex IngestionPipeline on the same files (same process, idle)")
            li_wall, li_chunks = llama_index_pipeline(files, data_dir)
            anchor = li_chunks / li_wall
            print(f"llama-index: wall {li_wall:.1f}s, {li_chunks} chunks, {anchor:.2f} chunks/s")

        raw_after = raw_encode(torch_model, texts)
        print(f"\nraw encode (after the pipeline): {raw_after:.2f} chunks/s")
        ours = chunks / wall
        raw = (raw_before + raw_after) / 2
        lo, hi = sorted(ours / r for r in (raw_before, raw_after))
        print(f"ratio pipeline / raw torch encode (mean of both) = {ours / raw:.2f} ", end="")
        print(f"(target >= 1.0; {lo:.2f}-{hi:.2f} against either raw run)")
        if not args.no_anchor:
            # Per chunk: the two pipelines cut the same text into different chunks.
            print(f"ratio pipeline / llama-index = {ours / anchor:.2f} (target >= 1.5); ", end="")
            print(f"llama-index / raw torch encode = {anchor / raw:.2f}")
            words = sum(len(p.read_text(errors="ignore").split()) for p in files)
            print(f"per word: ours {words / wall:.0f} words/s, llama-index {words / li_wall:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="SciFact documents to build")
    parser.add_argument("--source", choices=("scifact", "samples"), default="scifact")
    parser.add_argument("--batch", type=int, default=16, help="files per upload request")
    parser.add_argument("--min-words", type=int, default=150)
    parser.add_argument("--max-words", type=int, default=300)
    parser.add_argument("--concurrency", type=int, help="worker threads (default: the service's)")
    parser.add_argument("--steps", action="store_true", help="also time each stage alone")
    parser.add_argument("--no-anchor", action="store_true", help="skip the LlamaIndex pipeline")
    args = parser.parse_args()
    started = time.perf_counter()
    with c.scratch_dir("rag-bench-ingest") as data_dir:
        asyncio.run(run(args, data_dir))
    print(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

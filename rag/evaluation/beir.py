"""Reads a dataset in BEIR's layout, which most public retrieval benchmarks ship in and which a
user can produce from their own documents and judged questions:

    corpus.jsonl        {"_id", "title", "text", ...} one document per line
    queries.jsonl       {"_id", "text", ...} one query per line
    qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, with an optional header line

Only queries that appear in the split's qrels are kept (queries.jsonl often holds every split).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rag.errors import InvalidInput


class CorpusDoc(BaseModel):
    id: str
    title: str = ""
    text: str = ""


class BeirDataset(BaseModel):
    name: str
    split: str
    corpus: list[CorpusDoc]  # file order, which `subset` keeps
    queries: dict[str, str]  # query id -> text, in queries.jsonl order
    qrels: dict[str, dict[str, int]]  # query id -> corpus id -> grade


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"{path} is missing (expected BEIR layout)")
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(record, dict) or "_id" not in record:
                raise InvalidInput(f'{path}:{number}: expected an object with an "_id"')
            yield record


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise InvalidInput(f"{path} is missing (expected BEIR layout)")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip():
                continue
            if len(fields) < 3:
                raise InvalidInput(f"{path}:{number}: expected query-id, corpus-id, score")
            try:
                grade = int(float(fields[2]))
            except ValueError:
                if number == 1:  # the header line
                    continue
                message = f"{path}:{number}: score {fields[2]!r} is not a number"
                raise InvalidInput(message) from None
            qrels.setdefault(fields[0], {})[fields[1]] = grade
    return qrels


def load_corpus(path: Path) -> list[CorpusDoc]:
    """A corpus.jsonl on its own (what `rag eval answers --corpus` takes besides a folder)."""
    return [
        CorpusDoc(id=str(d["_id"]), title=str(d.get("title") or ""), text=str(d.get("text") or ""))
        for d in _jsonl(path)
    ]


def load_beir(directory: Path, *, split: str = "test") -> BeirDataset:
    qrels = load_qrels(directory / "qrels" / f"{split}.tsv")
    queries = {
        str(q["_id"]): str(q.get("text", ""))
        for q in _jsonl(directory / "queries.jsonl")
        if str(q["_id"]) in qrels
    }
    corpus = load_corpus(directory / "corpus.jsonl")
    if not queries:
        raise InvalidInput(f"no query in {directory / 'queries.jsonl'} has qrels in split {split}")
    return BeirDataset(
        name=directory.resolve().name,
        split=split,
        corpus=corpus,
        queries=queries,
        qrels={qid: judged for qid, judged in qrels.items() if qid in queries},
    )


def subset(
    dataset: BeirDataset, *, limit_queries: int | None = None, max_docs: int | None = None
) -> BeirDataset:
    """A smaller dataset for quick runs that stays meaningful: the first `limit_queries` queries,
    every document judged for them (so each still has its answers), plus the first `max_docs`
    other documents as distractors. Metrics on it are higher than on the full corpus."""
    query_ids = list(dataset.queries)[:limit_queries] if limit_queries else list(dataset.queries)
    qrels = {qid: dataset.qrels[qid] for qid in query_ids}
    corpus = dataset.corpus
    if max_docs is not None:
        judged = {doc_id for judged_docs in qrels.values() for doc_id in judged_docs}
        others = [doc for doc in corpus if doc.id not in judged][:max_docs]
        keep = judged | {doc.id for doc in others}
        corpus = [doc for doc in corpus if doc.id in keep]
    return BeirDataset(
        name=dataset.name,
        split=dataset.split,
        corpus=corpus,
        queries={qid: dataset.queries[qid] for qid in query_ids},
        qrels=qrels,
    )

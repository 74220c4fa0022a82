"""Document permissions, property-based: for random access lists on the documents and random
principals, nothing a principal may not read reaches it: not in retrieved chunks, citations,
streamed answer text or document counts; and a search's top-k stays full (the filter runs
inside the vector search). Permissions change in place, without re-embedding.

Real parts throughout: the embedded Qdrant store, the embedder and the local model."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.access import principal_tokens
from rag.answering import AnswerDelta
from rag.collections import IncomingFile
from rag.factory import Runtime, build_runtime
from rag.retrieval import SearchOptions
from tests.conftest import make_settings

# Each document carries a word no other has: if it reaches a response, the document leaked.
MARKERS = [f"zq{n:02d}vlk" for n in range(12)]
TOPICS = ["parking permits", "badge access", "lunch menu", "travel refunds"]
ACCESS = [
    ["*"],
    ["group:hr"],
    ["group:eng"],
    ["group:hr", "group:legal"],
    ["user:alice"],
    ["group:eng", "user:bob"],
]
GROUPS = ["hr", "eng", "legal"]
QUESTIONS = [f"What are the rules for {t}?" for t in TOPICS] + [f"What is {MARKERS[3]}?"]
COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("permissions")
    rt = build_runtime(make_settings(tmp, worker={"parse_isolated": False}))
    rt.catalog.create_collection("perm", "", rt.embedder.dimension)
    files = []
    for n, marker in enumerate(MARKERS):
        topic = TOPICS[n % len(TOPICS)]
        text = f"# Note {n} on {topic}\n\nThe rules for {topic} are in note {marker}. " * 3
        path = tmp / f"{n}.md"
        path.write_text(text)
        data = text.encode()
        files.append(
            IncomingFile(path, f"note-{n}.md", len(data), hashlib.sha256(data).hexdigest())
        )
    submission = rt.jobs.submit("perm", files)
    for job_id, document_id in submission.to_dispatch:
        assert rt.ingestor.ingest(job_id, document_id).status == "done"
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def documents(runtime: Runtime) -> dict[str, int]:
    """Document id → its number (and so its marker)."""
    docs = runtime.catalog.list_documents("perm")
    return {d.id: int(d.source.removeprefix("note-").removesuffix(".md")) for d in docs}


principals = st.tuples(
    st.lists(st.sampled_from(GROUPS), unique=True), st.sampled_from([None, "alice", "bob"])
)
assignments = st.lists(st.sampled_from(range(len(ACCESS))), min_size=12, max_size=12)


def _apply(
    runtime: Runtime, documents: dict[str, int], assignment: list[int]
) -> dict[int, set[str]]:
    """Give each document its drawn access list (in place: only the payload changes)."""
    current = {d.id: d for d in runtime.catalog.list_documents("perm")}
    readers: dict[int, set[str]] = {}
    for document_id, n in documents.items():
        access = ACCESS[assignment[n]]
        info = current[document_id]
        stored = [f"group:{g}" for g in info.allowed_groups] + [
            f"user:{u}" for u in info.allowed_users
        ]
        if sorted(stored or ["*"]) != sorted(access):
            runtime.catalog.set_access("perm", document_id, access)
        readers[n] = set(access)
    return readers


def _forbidden(readers: dict[int, set[str]], tokens: list[str]) -> set[str]:
    return {MARKERS[n] for n, access in readers.items() if not access & set(tokens)}


@settings(max_examples=60, **COMMON)
@given(
    assignment=assignments,
    principal=principals,
    question=st.sampled_from(QUESTIONS),
    top_k=st.integers(1, 12),
    mode=st.sampled_from(["dense", "sparse", "hybrid"]),
)
def test_retrieval_and_counts_show_only_readable_documents(
    runtime: Runtime,
    documents: dict[str, int],
    assignment: list[int],
    principal: tuple[list[str], str | None],
    question: str,
    top_k: int,
    mode: str,
) -> None:
    embedded_before = runtime.embedder.documents_embedded
    readers = _apply(runtime, documents, assignment)
    assert runtime.embedder.documents_embedded == embedded_before  # no re-embedding
    tokens = principal_tokens(*principal)
    readable = {n for n, access in readers.items() if access & set(tokens)}
    options = SearchOptions(top_k=top_k, mode=mode, max_per_document=0)  # type: ignore[arg-type]
    hits = runtime.retriever.retrieve("perm", question, options, access=tokens)
    got = {documents[h.chunk.document_id] for h in hits}
    assert got <= readable, f"leaked documents {got - readable}"
    assert not any(m in h.chunk.text for h in hits for m in _forbidden(readers, tokens))
    if mode == "dense":  # every readable chunk is a candidate: top-k is full
        assert len(hits) == min(top_k, len(readable))
    count = runtime.catalog.get_collection("perm", tokens).document_count
    assert count == len(readable)
    everything = runtime.retriever.retrieve("perm", question, options, access=None)
    assert len(everything) == min(top_k, len(MARKERS)) or mode != "dense"


@settings(max_examples=6, **COMMON)
@given(assignment=assignments, principal=principals, question=st.sampled_from(QUESTIONS))
def test_streamed_answers_never_carry_unreadable_text(
    runtime: Runtime,
    documents: dict[str, int],
    assignment: list[int],
    principal: tuple[list[str], str | None],
    question: str,
) -> None:
    readers = _apply(runtime, documents, assignment)
    tokens = principal_tokens(*principal)
    forbidden = _forbidden(readers, tokens)
    streamed = []
    final = None
    for event in runtime.answerer.stream("perm", question, access=tokens):
        if isinstance(event, AnswerDelta):
            streamed.append(event.text)
        else:
            final = event.answer
    assert final is not None
    text = "".join(streamed) + final.answer + " ".join(c.snippet for c in final.citations)
    assert not any(marker in text for marker in forbidden), text
    readable_ids = {d for d, n in documents.items() if readers[n] & set(tokens)}
    assert {c.document_id for c in final.citations} <= readable_ids


def test_a_document_nobody_listed_may_read_is_invisible(
    runtime: Runtime, documents: dict[str, int]
) -> None:
    _apply(runtime, documents, [4] * 12)  # every document: alice only
    assert runtime.retriever.retrieve("perm", QUESTIONS[0], access=principal_tokens(["hr"])) == []
    mine = runtime.retriever.retrieve("perm", QUESTIONS[0], access=principal_tokens([], "alice"))
    assert mine
    answer = runtime.answerer.answer("perm", QUESTIONS[0], access=principal_tokens(["eng"]))
    assert answer.citations == [] and not answer.answerable

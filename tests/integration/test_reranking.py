"""The query-likelihood reranker on the packaged Gemma model, alone and inside `Retriever`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from rag.errors import InvalidInput
from rag.evaluation.corpus import fresh_collection, index_folder
from rag.factory import Runtime, build_runtime
from rag.models import Chunk, ScoredChunk
from rag.reranking.llama_cpp import LlamaReranker
from rag.retrieval import DEFAULT_RERANK_TOP_N, Retriever, SearchOptions
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

CASES = [
    (
        "How quickly must a severity 1 incident be acknowledged?",
        "A severity 1 incident must be acknowledged within 15 minutes, at any hour of the day.",
    ),
    (
        "What is the boiling point of water at sea level?",
        "At sea level, pure water boils at 100 degrees Celsius.",
    ),
    (
        "Who approves travel over 2,000 EUR?",
        "Travel above 2,000 EUR must be approved by the CFO before anything is booked.",
    ),
]
UNRELATED = [
    "The cafeteria opens at 8am and serves breakfast until 10am.",
    "Python lists are mutable sequences; tuples are not.",
    "Expense reports are due on the fifth working day of each month.",
    "Severity 3 tickets are triaged once a week by the support rota.",
]


def scored(texts: Sequence[str]) -> list[ScoredChunk]:
    return [
        ScoredChunk(
            chunk=Chunk(id=f"c{i}", document_id=f"d{i}", collection="c", index=0, text=text),
            score=1.0 - i / 10,
        )
        for i, text in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def reranker() -> Iterator[LlamaReranker]:
    model = LlamaReranker()
    yield model
    model.close()


@pytest.mark.parametrize(("question", "answer"), CASES)
def test_the_passage_that_answers_rises_above_unrelated_ones(
    reranker: LlamaReranker, question: str, answer: str
) -> None:
    hits = scored([*UNRELATED, answer])  # retrieval ranked it last
    ranked = reranker.rerank(question, hits, top_n=len(hits))
    assert ranked[0].chunk.text == answer
    assert sorted(h.chunk.id for h in ranked) == sorted(h.chunk.id for h in hits)


def test_past_top_n_nothing_moves(reranker: LlamaReranker) -> None:
    question, answer = CASES[0]
    hits = scored([UNRELATED[0], UNRELATED[1], answer, UNRELATED[2]])
    ranked = reranker.rerank(question, hits, top_n=2)
    assert [h.chunk.id for h in ranked[2:]] == ["c2", "c3"]
    assert reranker.model_id.startswith("gemma-3-270m-Q4_K_M@")


class Recording:
    """The real reranker, noting how it was called."""

    def __init__(self, inner: LlamaReranker) -> None:
        self.inner = inner
        self.calls: list[int] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def rerank(self, question: str, hits: Sequence[ScoredChunk], top_n: int) -> list[ScoredChunk]:
        self.calls.append(top_n)
        return self.inner.rerank(question, hits, top_n)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    docs = tmp_path_factory.mktemp("docs")
    for i, text in enumerate([*UNRELATED, *(answer for _, answer in CASES)]):
        (docs / f"doc{i}.txt").write_text(text + "\n")
    runtime = build_runtime(make_settings(tmp_path_factory.mktemp("data")))
    fresh_collection(runtime, "rerank", "reranking test")
    assert index_folder(runtime, "rerank", docs) == []
    yield runtime
    runtime.close()


def test_retrieval_reranks_only_when_asked(runtime: Runtime, reranker: LlamaReranker) -> None:
    spy = Recording(reranker)
    settings = runtime.settings.retrieval.model_copy()
    retriever = Retriever(
        runtime.catalog, runtime.embedder, runtime.sparse, runtime.store, settings, reranker=spy
    )
    question, answer = CASES[0]
    plain = retriever.retrieve("rerank", question, SearchOptions(top_k=3))
    assert spy.calls == []
    reranked = retriever.retrieve("rerank", question, SearchOptions(top_k=3, rerank=True))
    assert spy.calls == [DEFAULT_RERANK_TOP_N]
    assert reranked[0].chunk.text.strip() == answer
    assert len(plain) == len(reranked) == 3

    settings.rerank_top_n = 4  # configured on: every request reranks unless it says no
    retriever.retrieve("rerank", question, SearchOptions(top_k=3))
    retriever.retrieve("rerank", question, SearchOptions(top_k=3, rerank=False))
    assert spy.calls == [DEFAULT_RERANK_TOP_N, 4]


def test_asking_to_rerank_without_a_reranker_is_refused(runtime: Runtime) -> None:
    retriever = Retriever(
        runtime.catalog, runtime.embedder, runtime.sparse, runtime.store, runtime.settings.retrieval
    )
    with pytest.raises(InvalidInput, match="reranking"):
        retriever.retrieve("rerank", "anything", SearchOptions(rerank=True))
    assert retriever.retrieve("rerank", "severity 1 incident", SearchOptions(top_k=2))


def test_the_runtime_wires_a_reranker_that_loads_nothing_until_used(runtime: Runtime) -> None:
    assert runtime.retriever.reranker is runtime.reranker
    hits = runtime.retriever.retrieve("rerank", CASES[2][0], SearchOptions(top_k=2))
    assert hits and runtime.reranker._llm is None

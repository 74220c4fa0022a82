"""A `Reranker` on the packaged generator model, by query likelihood: a passage ranks higher the
more probable the model finds the question after reading it (Sachan et al., 2022, "Improving
Passage Retrieval with Zero-Shot Question Generation").

No cross-encoder ships in a PyPI wheel and nothing is downloaded at run time, so the model
already on disk reads each (passage, question) pair. Asking the 270M base model "is the passage
relevant? Yes/No" was measured first and ranked no better than chance on hand-made cases; the
likelihood of the question's own tokens separates them clearly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import BackendError
from rag.generation.llama_cpp import GgufFile, load_llama
from rag.models import ScoredChunk
from rag.reranking import reorder

if TYPE_CHECKING:
    from llama_cpp import Llama

BACKEND = "llama_cpp_reranker"

# The passage comes first: the question's tokens are what is scored.
PASSAGE_PROMPT = "Passage: {passage}\nA question this passage answers:"


class LlamaReranker:
    """Scores passages with a local GGUF model; one evaluation at a time (one llama.cpp context).

    The model loads on first use, in a context of its own, so reranking never waits for an
    answer being generated (nor the other way round); the OS maps the model file once for both.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        model_id: str | None = None,
        max_passage_tokens: int = 320,
        max_question_tokens: int = 64,
        threads: int | None = None,
    ) -> None:
        self._gguf = GgufFile(model_path, model_id)
        self.max_passage_tokens = max_passage_tokens
        self.max_question_tokens = max_question_tokens
        self.threads = threads or os.cpu_count() or 1
        self._llm: Llama | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._gguf.model_id

    @property
    def _window(self) -> int:
        # The template, one passage and the question, decoded in one batch.
        return self.max_passage_tokens + self.max_question_tokens + 32

    def _model(self) -> Llama:
        if self._llm is None:
            self._llm = load_llama(
                self._gguf.path,
                n_ctx=self._window,
                n_batch=self._window,
                n_ubatch=self._window,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                logits_all=False,
            )
        return self._llm

    def ping(self) -> None:
        with self._lock:
            self._model()

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        """Mean log-probability of the question's tokens after each passage's prompt."""
        with self._lock:
            llm = self._model()
            # Document text is data: never parsed into control tokens.
            asked = llm.tokenize(f" {question.strip()}".encode(), add_bos=False, special=False)
            asked = asked[: self.max_question_tokens]
            if not asked:
                return [0.0] * len(passages)
            head, tail = PASSAGE_PROMPT.split("{passage}")
            tail_tokens = llm.tokenize(tail.encode("utf-8"), add_bos=False, special=False)
            results = []
            for passage in passages:
                context = llm.tokenize(
                    (head + passage).encode("utf-8"), add_bos=True, special=False
                )[: self.max_passage_tokens]
                results.append(self._likelihood(llm, context + tail_tokens, asked))
            return results

    @staticmethod
    def _likelihood(llm: Llama, context: list[int], asked: list[int]) -> float:
        """Decodes context + question in one batch, asking llama.cpp for logits only at the
        positions that predict a question token (the vocabulary is 262k wide: logits for every
        position would cost more than the transformer itself)."""
        import llama_cpp

        tokens = context + asked
        first = len(context) - 1
        llm.n_tokens = 0  # the high-level state no longer matches the cache
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)
        batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
        try:
            batch.n_tokens = len(tokens)
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = first <= i < len(tokens) - 1
            status = llama_cpp.llama_decode(llm.ctx, batch)
            if status != 0:
                raise BackendError(f"llama.cpp decode failed ({status})", backend=BACKEND)
            n_vocab = llm.n_vocab()
            rows = np.stack(
                [
                    np.ctypeslib.as_array(
                        llama_cpp.llama_get_logits_ith(llm.ctx, first + j), shape=(n_vocab,)
                    )
                    for j in range(len(asked))
                ]
            ).astype(np.float64)
        finally:
            llama_cpp.llama_batch_free(batch)
        peak = rows.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
        picked = rows[np.arange(len(asked)), asked]
        return float((picked - log_norm).mean())

    def rerank(self, question: str, hits: Sequence[ScoredChunk], top_n: int) -> list[ScoredChunk]:
        head = hits[:top_n]
        if len(head) < 2:
            return list(hits)
        scores = self.scores(question, [h.chunk.embedding_text() for h in head])
        return reorder(hits, top_n, scores)

"""Embed chunks of several documents in one model call.

A document of one or two chunks would otherwise be encoded alone, and a CPU model is much
faster per chunk in batches. Worker threads hand their texts to one encoding thread, which
takes whatever has queued up (up to `max_batch` texts) and encodes it together; each caller
gets its own rows back. With one worker thread this changes nothing but a thread hop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from rag.embedding import Embedder


@dataclass
class _Request:
    texts: Sequence[str]
    result: Future[list[list[float]]] = field(default_factory=Future)


class BatchingEmbedder:
    """An `Embedder` whose `embed_documents` calls from concurrent threads share batches."""

    def __init__(self, inner: Embedder, *, max_batch: int = 64):
        self.inner = inner
        self.model_name = inner.model_name
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="rag-embed", daemon=True).start()

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def tokenize(self, text: str) -> list[str]:
        return self.inner.tokenize(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        request = _Request(texts)
        self._queue.put(request)
        return request.result.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = len(batch[0].texts)
            while size < self.max_batch:
                try:
                    request = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(request)
                size += len(request.texts)
            self._encode(batch)

    def _encode(self, batch: list[_Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        try:
            vectors = self.inner.embed_documents(texts)
        except BaseException as exc:  # every caller in the batch sees the failure
            for request in batch:
                request.result.set_exception(exc)
            return
        start = 0
        for request in batch:
            request.result.set_result(vectors[start : start + len(request.texts)])
            start += len(request.texts)

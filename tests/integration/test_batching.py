"""Concurrent callers of `BatchingEmbedder` share model calls and each get their own rows."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rag.embedding.batching import BatchingEmbedder
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder


def test_concurrent_documents_share_batches_and_get_their_own_vectors() -> None:
    inner = SentenceTransformerEmbedder()
    batching = BatchingEmbedder(inner, max_batch=64)
    documents = [
        [f"Document {d}, chunk {c}: room {d * 7 + c} is free." for c in range(3)] for d in range(12)
    ]
    expected = [inner.embed_documents(texts) for texts in documents]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(batching.embed_documents, documents))
    for mine, reference in zip(got, expected, strict=True):
        assert np.allclose(mine, reference, atol=1e-5)
    assert batching.embed_documents([]) == []
    assert batching.dimension == inner.dimension and batching.model_name == inner.model_name

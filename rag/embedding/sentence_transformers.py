"""Dense embeddings with sentence-transformers, on the packaged all-MiniLM-L6-v2 by default."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.embedding import PACKAGED_MODEL, packaged_model_path
from rag.errors import BackendUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class SentenceTransformerEmbedder:
    """Loads the model on first use; batches and L2-normalises so dot product = cosine."""

    def __init__(self, model: str | None = None, *, batch_size: int = 32, device: str = "cpu"):
        self._model_ref = model or packaged_model_path()
        self.model_name = PACKAGED_MODEL if model is None else model
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        # Texts embedded for indexing since start: what re-ingesting unchanged files must not add.
        self.documents_embedded = 0

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    try:
                        self._model = SentenceTransformer(self._model_ref, device=self.device)
                    except OSError as exc:
                        raise BackendUnavailable(
                            f"embedding model {self._model_ref!r} could not be loaded: {exc}",
                            backend="embedder",
                        ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        # sentence-transformers 5 renamed the method; keep working with both.
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = getter()
        assert dim is not None
        return int(dim)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents_embedded += len(texts)
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(row) for row in vectors.tolist()]

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of `text`, however long: chunking measures whole sections with it."""
        tokenizer = self.model.tokenizer
        # transformers warns (once) that a text is longer than the model's input, which is
        # the point of measuring it; marking the warning as given keeps it out of the logs.
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True
        return list(tokenizer.tokenize(text))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

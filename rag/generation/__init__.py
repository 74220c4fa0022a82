"""The `Generator` role: a grounded prompt in, a model's text out."""

from __future__ import annotations

from typing import Protocol

from rag.models import Generation, GroundedPrompt


class Generator(Protocol):
    @property
    def model_id(self) -> str:
        """The pinned model recorded on every answer (name and exact version)."""
        ...

    def generate(self, prompt: GroundedPrompt) -> Generation: ...

    def ping(self) -> None:
        """Raise `BackendUnavailable` when the model cannot answer."""
        ...

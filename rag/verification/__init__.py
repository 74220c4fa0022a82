"""Claim-level verification: every claim of an answer checked against the passages.

An answer is split into claims (`claims`), the passages into sentences and windows
(`evidence`), and a `Verifier` labels each claim SUPPORTED, CONTRADICTED or NOT_FOUND with the
windows it rests on. `check` keeps the supported claims, cites the passages they rest on and
returns the rest with their labels. Two verifiers implement the role:

- `deterministic`: a small fitted model over word, name, number, negation and embedding
  signals (`features`, `model`); milliseconds per claim, no model call;
- `llm`: any catalog model, one call per answer, asked for JSON labels with evidence ids; it
  falls back to the deterministic verifier on error, timeout or malformed output.

Which one runs is a routing policy's choice (`verifier`: `deterministic`, a catalog model name,
or `self` for the model that answered); `select` applies it, and a private request is never
verified by a model that may not see private data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rag.models import ClaimLabel
from rag.verification.claims import Claim
from rag.verification.evidence import Evidence, Window


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verifier's label for one claim, how sure it is, and the windows it rests on (best
    first)."""

    label: ClaimLabel
    score: float
    windows: list[Window] = field(default_factory=list)


@dataclass
class Verdict:
    """A verifier's judgements, one per claim in order, and who really decided."""

    judgements: list[Judgement]
    verifier: str
    fallback: str | None = None


class Verifier(Protocol):
    @property
    def name(self) -> str:
        """Recorded on every answer it judged: kind and pinned version or model."""
        ...

    def judge(
        self, claims: Sequence[Claim], evidence: Evidence, question: str | None
    ) -> Verdict: ...

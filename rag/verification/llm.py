"""A catalog model as verifier: one call per answer, JSON labels with evidence sentence ids.

The model sees the passages split into numbered sentences (S1, S2, ... across all passages)
and the numbered claims, and answers

    {"claims": [{"claim": 1, "label": "SUPPORTED", "evidence": [3, 4]}, ...]}

Anything short of that falls back to the deterministic verifier, recorded on the answer: a
backend error, a reply later than `timeout_s`, text that labels no claim. A reply cut short by
its token budget still counts for the entries it completed. A claim the reply
leaves out, or gives an unknown label, is judged by the deterministic verifier alone; evidence
ids that name no sentence are ignored, and a SUPPORTED claim with no valid evidence id rests
on the deterministic verifier's best window. Claims beyond `max_claims` (what the model's
output budget holds) are judged deterministically too. A claim the deterministic verifier finds
CONTRADICTED (a number the passage does not give, "not" added) stays so whatever the model says:
small models call such claims SUPPORTED.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from rag.errors import RagError
from rag.generation import Done, Generator, TextDelta
from rag.models import ClaimLabel, GroundedPrompt, Passage
from rag.verification import Judgement, Verdict, Verifier
from rag.verification.claims import Claim
from rag.verification.evidence import Evidence, Window

TOKENS_PER_CLAIM = 32
"""Output budget one claim's JSON entry needs, with room for a few evidence ids."""

_LABELS = {
    "SUPPORTED": ClaimLabel.SUPPORTED,
    "SUPPORT": ClaimLabel.SUPPORTED,
    "CONTRADICTED": ClaimLabel.CONTRADICTED,
    "CONTRADICT": ClaimLabel.CONTRADICTED,
    "NOT_FOUND": ClaimLabel.NOT_FOUND,
    "NOT FOUND": ClaimLabel.NOT_FOUND,
    "NEI": ClaimLabel.NOT_FOUND,
}
_SCORES = {ClaimLabel.SUPPORTED: 1.0, ClaimLabel.CONTRADICTED: 0.0, ClaimLabel.NOT_FOUND: 0.0}


class Malformed(ValueError):
    """The model's reply holds no usable verdict."""


class LlmVerifier:
    def __init__(
        self,
        generator: Generator,
        model: str,
        fallback: Verifier,
        *,
        timeout_s: float = 30.0,
        max_tokens: int = 256,
    ) -> None:
        self.generator = generator
        self.model = model
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.max_claims = max(1, (max_tokens - 16) // TOKENS_PER_CLAIM)

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def judge(self, claims: Sequence[Claim], evidence: Evidence, question: str | None) -> Verdict:
        baseline = self.fallback.judge(claims, evidence, question)
        asked = list(claims[: self.max_claims])
        if not asked:
            return baseline
        try:
            reply = self._ask(asked, evidence, question)
            labels = parse_reply(reply, len(asked), len(evidence.sentences))
        except (RagError, Malformed) as exc:
            why = exc.message if isinstance(exc, RagError) else str(exc)
            return Verdict(baseline.judgements, baseline.verifier, f"{self.name}: {why}")
        judgements = list(baseline.judgements)
        for index, (label, sentence_ids) in labels.items():
            judgements[index] = _judgement(
                label, sentence_ids, evidence, baseline.judgements[index]
            )
        return Verdict(judgements, self.name)

    def _ask(self, claims: Sequence[Claim], evidence: Evidence, question: str | None) -> str:
        prompt = verification_prompt(claims, evidence, question, self.max_tokens)
        deadline = time.monotonic() + self.timeout_s
        events = self.generator.stream(prompt)
        parts: list[str] = []
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Done):
                    return event.generation.text
                if time.monotonic() > deadline:
                    raise Malformed(f"no verdict within {self.timeout_s:g} s")
        finally:
            events.close()
        return "".join(parts)


def verification_prompt(
    claims: Sequence[Claim], evidence: Evidence, question: str | None, max_tokens: int
) -> GroundedPrompt:
    passages = []
    for p, hit in enumerate(evidence.hits):
        numbered = [
            f"(S{i + 1}) {sentence}"
            for i, sentence in enumerate(evidence.sentences)
            if evidence.passage_of[i] == p
        ]
        passages.append(
            Passage(
                marker=p + 1,
                text=" ".join(numbered),
                title=hit.chunk.title,
                section=hit.chunk.section,
            )
        )
    return GroundedPrompt(
        question=question or "",
        passages=passages,
        max_tokens=min(max_tokens, 16 + TOKENS_PER_CLAIM * len(claims)),
        task="verify",
        claims=[c.text for c in claims],
    )


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
# One entry, as far as it got: a reply cut short by its token budget still names its labels.
_ENTRY = re.compile(
    r'"claim"\s*:\s*(\d+)\s*,\s*"label"\s*:\s*"([^"]*)"(?:\s*,\s*"evidence"\s*:\s*\[([^\]]*))?'
)


def parse_reply(text: str, claims: int, sentences: int) -> dict[int, tuple[ClaimLabel, list[int]]]:
    """Claim index (0-based) → (label, 0-based sentence indexes) for each usable entry. A reply
    that is not valid JSON (cut short, say) still counts for the entries it completed."""
    entries = _entries(text)
    labels: dict[int, tuple[ClaimLabel, list[int]]] = {}
    for number, raw_label, ids in entries:
        label = _LABELS.get(str(raw_label).upper())
        if not isinstance(number, int) or not 1 <= number <= claims or label is None:
            continue
        valid = [_sentence_id(i) for i in ids] if isinstance(ids, list) else []
        labels[number - 1] = (
            label,
            [i - 1 for i in valid if i is not None and 1 <= i <= sentences],
        )
    if not labels:
        raise Malformed("the reply labels none of the claims")
    return labels


def _entries(text: str) -> list[tuple[object, object, object]]:
    found = _OBJECT.search(text)
    try:
        data: Any = json.loads(found.group()) if found else None
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("claims"), list):
        return [
            (e.get("claim"), e.get("label", ""), e.get("evidence") or [])
            for e in data["claims"]
            if isinstance(e, dict)
        ]
    salvaged: list[tuple[object, object, object]] = [
        (int(n), label, [i for i in re.split(r"[,\s]+", ids or "") if i.strip('"')])
        for n, label, ids in _ENTRY.findall(text)
    ]
    if not salvaged:
        raise Malformed("the reply holds no claims list in JSON")
    return salvaged


def _sentence_id(value: object) -> int | None:
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*S?(\d+)\s*", str(value), re.IGNORECASE)
    return int(match.group(1)) if match else None


def _judgement(
    label: ClaimLabel, sentence_ids: list[int], evidence: Evidence, baseline: Judgement
) -> Judgement:
    if label is ClaimLabel.SUPPORTED and baseline.label is ClaimLabel.CONTRADICTED:
        return baseline  # a number or a negation the passage contradicts: rules outrank a model
    windows = [Window(evidence.passage_of[i], i, i) for i in sentence_ids]
    if not windows and label is not ClaimLabel.NOT_FOUND:
        windows = baseline.windows[:1]
    if label is ClaimLabel.NOT_FOUND:
        windows = []
    return Judgement(label, _SCORES[label], windows)

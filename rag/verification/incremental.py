"""Verifying an answer while it is written, so that a stream shows only checked text.

The model's text is fed in as it arrives. Each time a sentence is complete (one more has begun
after it, so its end can no longer move), the complete part is checked and whatever verified
text it adds is returned for the client to show. The final check runs over the whole answer with
the same judgements (each claim is judged once, remembered by its text and cited markers), so
the kept text of a prefix is a prefix of the final kept text: nothing shown is taken back. Two
rules keep that true: a sentence still being written is never checked, and when the question
asks for a number or a date nothing is shown until the kept text gives one (the final check
would otherwise drop it all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from rag.models import ScoredChunk
from rag.verification import Judgement, Verdict, Verifier
from rag.verification.check import Checked, check
from rag.verification.claims import Claim
from rag.verification.evidence import Evidence, gather
from rag.verification.text import split_sentences

log = logging.getLogger(__name__)


class _Remembered:
    """A verifier that judges each claim once: the same claim gets the same judgement in every
    check of a growing answer."""

    def __init__(self, verifier: Verifier):
        self.verifier = verifier
        self.judged: dict[tuple[str, frozenset[int]], Judgement] = {}
        self.fallback: str | None = None

    @property
    def name(self) -> str:
        return self.verifier.name

    def judge(self, claims: Sequence[Claim], evidence: Evidence, question: str | None) -> Verdict:
        new = [c for c in claims if (c.context, c.cited) not in self.judged]
        if new:
            verdict = self.verifier.judge(new, evidence, question)
            self.fallback = self.fallback or verdict.fallback
            for claim, judgement in zip(new, verdict.judgements, strict=True):
                self.judged[claim.context, claim.cited] = judgement
        judgements = [self.judged[c.context, c.cited] for c in claims]
        return Verdict(judgements, self.verifier.name, self.fallback)


class IncrementalCheck:
    def __init__(self, hits: list[ScoredChunk], verifier: Verifier, question: str | None):
        self.hits, self.question = hits, question
        self.verifier = _Remembered(verifier)
        self.evidence: Evidence | None = gather(hits) if hits else None
        self.text = ""
        self.shown = ""
        self.shown_marked = ""  # `shown` with its citation markers (Checked.marked)
        self.rest = ""
        self.spent_s = 0.0  # in every check so far: what verifying this answer cost
        self._complete = 0  # sentences known complete at the last check

    def feed(self, delta: str) -> str:
        """Add the model's next text; return newly verified text to show ('' if none)."""
        self.text += delta
        sentences = split_sentences(self.text)
        if len(sentences) - 1 <= self._complete:
            return ""
        self._complete = len(sentences) - 1
        complete = self.text[: self.text.rfind(sentences[-1])]
        return self._show(self._check(complete))

    def finish(self, text: str) -> Checked:
        """The whole answer's check; `rest` is then the verified text not yet shown."""
        self.text = text
        checked = self._check(text)
        if not checked.answer.startswith(self.shown):  # a broken invariant: say so loudly
            log.error("verified stream: the final answer does not extend the text shown")
        self.rest = self._show(checked)
        return checked

    def _check(self, text: str) -> Checked:
        start = time.perf_counter()
        try:
            return check(text, self.hits, self.verifier, self.question, evidence=self.evidence)
        finally:
            self.spent_s += time.perf_counter() - start

    def _show(self, checked: Checked) -> str:
        kept = checked.answer
        if len(kept) <= len(self.shown) or not kept.startswith(self.shown):
            return ""
        new, self.shown = kept[len(self.shown) :], kept
        self.shown_marked = checked.marked
        return new

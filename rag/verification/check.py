"""An answer checked claim by claim: what is kept, what is dropped and why, and the citations.

Citations are ours, never taken on trust from the model's [n] markers: a passage is cited when
a kept claim rests on it, numbered 1..k in order of first use. A model's own marker only adds
a passage that supports the claim too. A sentence is kept whole when all its claims are
supported; when only some clauses are, those clauses are kept. When the question asks for a
number or a date ("when", "how many", "what year"), what is kept must give one (a number, a
spelled number, a month, a weekday or a frequency): a supported sentence that does not ("The
platform team owns the rotation") does not answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.models import CheckedClaim, Citation, ClaimLabel, EvidenceSpan, ScoredChunk
from rag.verification import Judgement, Verifier
from rag.verification.claims import Claim, split_answer
from rag.verification.evidence import Evidence, Window, gather

UNSUPPORTED_REASON = "the model's answer is not supported by the retrieved passages"
CONTRADICTED_REASON = "the retrieved passages contradict the model's answer"
ABSTAINED_REASON = "the model found no answer in the retrieved passages"
EMPTY_REASON = "the model produced no answer"
NO_PASSAGES_REASON = "no passages were retrieved"
NO_NUMBER_REASON = (
    "the question asks when or how much, and the supported claims give no number or date"
)

_ASKS_FOR_NUMBER = re.compile(
    r"^\W*(?:when\b|how\s+(?:many|much|long|often|old|far|large|big|high|tall|fast)\b|"
    r"(?:what|which)\s+(?:year|date|percentage|proportion|fraction|share|number|amount|age)\b)",
    re.IGNORECASE,
)


_QUANTITY = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half|once|twice|several|"
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|"
    r"mon|tues|wednes|thurs|fri|satur|sun)(?:days?)?\b|"
    r"\b(?:daily|weekly|monthly|quarterly|yearly|annually|hourly|nightly|every|each|"
    r"spring|summer|autumn|fall|winter|morning|afternoon|evening|night|noon|midnight|"
    r"today|tomorrow|yesterday|decades?|centur(?:y|ies)|before|after|during|until|since)\b",
    re.IGNORECASE,
)


def asks_for_number(question: str) -> bool:
    """A when / how many / what year question: its answer must hold a number or a date."""
    return bool(_ASKS_FOR_NUMBER.search(question))


def gives_quantity(text: str) -> bool:
    """A number, a spelled number, a date or a frequency ("every April", "twice", "nightly")."""
    return bool(_QUANTITY.search(text))


@dataclass
class Checked:
    answer: str
    answerable: bool
    verifier: str
    citations: list[Citation] = field(default_factory=list)
    claims: list[CheckedClaim] = field(default_factory=list)
    reason: str | None = None
    fallback: str | None = None
    marked: str = ""  # `answer` with each sentence's citation markers: "… in March [1]."

    @property
    def unsupported(self) -> list[CheckedClaim]:
        return [c for c in self.claims if c.label is not ClaimLabel.SUPPORTED]


def check(
    answer_text: str,
    hits: list[ScoredChunk],
    verifier: Verifier,
    question: str | None = None,
    *,
    evidence: Evidence | None = None,
) -> Checked:
    """Verify `answer_text` against `hits` (in the order the model saw them: [1] is hits[0]);
    `evidence`: `gather(hits)` made once for several checks against the same hits."""
    split = split_answer(answer_text, question)
    checkable = [c for c in split.claims if c.checkable]
    if not checkable or not hits:
        why = ABSTAINED_REASON if split.abstained else EMPTY_REASON
        why = why if not checkable else NO_PASSAGES_REASON
        return Checked("", False, verifier.name, claims=_unchecked(split.claims), reason=why)
    evidence = evidence or gather(hits)
    verdict = verifier.judge(checkable, evidence, question)
    judged = dict(zip(map(id, checkable), verdict.judgements, strict=True))
    citations, markers = _citations(evidence, verdict.judgements)
    claims = []
    for claim in split.claims:
        judgement = judged.get(id(claim), Judgement(ClaimLabel.NOT_FOUND, 0.0))
        claims.append(_checked(claim, judgement, evidence, markers))
    kept, marked = _kept_text(split.claims, claims, split.sentences)
    reason: str | None = None
    if kept and question and asks_for_number(question) and not gives_quantity(kept):
        kept, marked, reason = "", "", NO_NUMBER_REASON
    elif not kept:
        reason = UNSUPPORTED_REASON
        if split.abstained:
            reason = ABSTAINED_REASON
        elif any(c.label is ClaimLabel.CONTRADICTED for c in claims):
            reason = CONTRADICTED_REASON
    return Checked(
        answer=kept,
        answerable=bool(kept),
        verifier=verdict.verifier,
        citations=citations if kept else [],
        claims=claims,
        reason=reason,
        fallback=verdict.fallback,
        marked=marked,
    )


def _unchecked(claims: list[Claim]) -> list[CheckedClaim]:
    return [_checked(c, Judgement(ClaimLabel.NOT_FOUND, 0.0)) for c in claims]


def _citations(
    evidence: Evidence, judgements: list[Judgement]
) -> tuple[list[Citation], dict[int, int]]:
    """One citation per passage a supported claim rests on, numbered in order of first use,
    showing the window that supported it best; and passage index → marker."""
    best: dict[int, tuple[float, Window]] = {}
    for judgement in judgements:
        if judgement.label is not ClaimLabel.SUPPORTED:
            continue
        for window in judgement.windows:
            seen = best.get(window.passage)
            if seen is None or judgement.score > seen[0]:
                best[window.passage] = (judgement.score, window)
    markers = {passage: marker for marker, passage in enumerate(best, start=1)}
    citations = []
    for passage, (score, window) in best.items():
        chunk = evidence.hits[passage].chunk
        citations.append(
            Citation(
                marker=markers[passage],
                chunk_id=chunk.id,
                document_id=chunk.document_id,
                collection=chunk.collection,
                source=chunk.source,
                title=chunk.title,
                section=chunk.section,
                page=chunk.page,
                snippet=evidence.snippet(window),
                score=round(score, 4),
            )
        )
    return citations, markers


def _checked(
    claim: Claim,
    judgement: Judgement,
    evidence: Evidence | None = None,
    markers: dict[int, int] | None = None,
) -> CheckedClaim:
    spans: list[EvidenceSpan] = []
    cited: list[int] = []
    if evidence is not None:
        spans = [evidence.span(w, w.passage + 1) for w in judgement.windows]
        if judgement.label is ClaimLabel.SUPPORTED and markers:
            cited = list(dict.fromkeys(markers[w.passage] for w in judgement.windows))
    return CheckedClaim(
        text=claim.text,
        label=judgement.label,
        score=round(judgement.score, 4),
        citations=cited,
        evidence=spans,
        note=claim.note,
    )


def _kept_text(
    claims: list[Claim], checked: list[CheckedClaim], sentences: list[str]
) -> tuple[str, str]:
    """Whole sentences whose claims all hold; the holding clauses of the others. Also the same
    text with the markers of the citations each piece rests on."""
    by_sentence: dict[int, list[tuple[Claim, CheckedClaim]]] = {}
    for claim, result in zip(claims, checked, strict=True):
        by_sentence.setdefault(claim.sentence, []).append((claim, result))
    kept: list[str] = []
    marked: list[str] = []
    for pairs in by_sentence.values():
        holding = [(c, r) for c, r in pairs if r.label is ClaimLabel.SUPPORTED]
        if not holding:
            continue
        if len(holding) == len(pairs):
            cited = [m for _, r in holding for m in r.citations]
            pieces = [(sentences[pairs[0][0].sentence], cited)]
        else:
            pieces = [(_as_sentence(c.text), r.citations) for c, r in holding]
        for text, markers in pieces:
            kept.append(text)
            marked.append(_with_markers(text, markers))
    return " ".join(kept), " ".join(marked)


def _with_markers(sentence: str, markers: list[int]) -> str:
    """`[n]` before the sentence's closing punctuation."""
    refs = "".join(f"[{m}]" for m in dict.fromkeys(markers))
    if not refs:
        return sentence
    body = sentence.rstrip()
    words = body.rstrip(".!?")
    return f"{words} {refs}{body[len(words) :]}"


def _as_sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."

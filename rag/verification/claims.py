"""An answer split into the claims that verification checks.

A claim is a sentence of the answer, or a clause of a long one ("X rose by 5%, whereas Y fell"
is two claims), with the model's [n] markers removed and remembered. Some sentences are not
claims at all and are set aside with a note rather than checked:

- an abstention ("I don't know", "the passages do not say"): the model declined;
- a sentence cut short ("The two tasks it is trained on are [2]."): once the marker is gone
  nothing is said;
- a sentence that only restates the question, and a bare "Yes." or "No.": nothing to check.

A short fragment ("Rust", "within 15 minutes") is checked in the question's context: the
evidence must hold the question's subject as well as the answer's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.verification.text import (
    cited_markers,
    content_terms,
    question_content_terms,
    split_sentences,
    strip_markers,
    words,
)

NOTE_INCOMPLETE = "an incomplete sentence: it says nothing once its citation is removed"
NOTE_RESTATES = "restates the question without answering it"
NOTE_BARE_YES_NO = "a bare yes or no is not a checkable statement"

FRAGMENT_TERMS = 3
"""A sentence with at most this many content terms is a fragment, checked with the question."""

CLAUSE_WORDS = 20
"""Sentences longer than this are split into clauses where each side makes a statement."""

_ABSTENTION = re.compile(
    r"""
    \b(?:i|we)\s+(?:do\s+not|don['’]t|cannot|can['’]t|could\s+not|couldn['’]t)\s+
        (?:know|say|tell|find|answer|determine)
    | \b(?:cannot|can['’]t|unable\s+to|not\s+able\s+to|impossible\s+to)\s+(?:be\s+)?
        (?:answer|determine|find|tell|say)
    | \bnot\s+(?:mentioned|stated|specified|provided|given|included|covered|found|contained|
        available|present|discussed|answered)\s+in\s+the\s+
        (?:passages?|context|text|documents?|sources?|information)
    | \b(?:passages?|context|text|documents?|sources?)\s+(?:do(?:es)?\s+not|do(?:es)?n['’]t)\s+
        (?:say|mention|contain|specify|state|provide|include|cover|answer|discuss|tell)
    | \b(?:passages?|context|text|documents?|sources?)\s+(?:contains?|provides?|gives?|has|have)\s+
        no\s+(?:information|mention|answer|details?)
    | \bthere\s+(?:is|was)\s+no\s+(?:information|mention|answer)\b
    | \bno\s+(?:information|mention|answer)\s+(?:is|was)\s+(?:given|provided|found|available)
    | ^\s*(?:unknown|n/?a|none|no\s+answer)\W*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
# A sentence that ends on one of these says nothing: "... are.", "... such as.", "... of."
_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "as",
        "than",
        "that",
        "which",
        "whose",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "include",
        "includes",
        "including",
        "such",
        "like",
        "namely",
        "following",
        "these",
        "those",
        "their",
        "its",
        "his",
        "her",
        "our",
        "your",
        "my",
    ]
)
_YES_NO = re.compile(r"^\W*(?:yes|no)\W*$", re.IGNORECASE)
# Where a long sentence may be split: between two statements joined by a conjunction.
_CLAUSE_BREAK = re.compile(
    r";\s+|,\s+(?=(?:and|but|whereas|while|although|though|yet)\s)", re.IGNORECASE
)
_MIN_CLAUSE_TERMS = 3


@dataclass(frozen=True, slots=True)
class Claim:
    """One checkable statement of an answer."""

    text: str
    sentence: int = 0
    """Index of the answer sentence it belongs to (in `SplitAnswer.sentences`)."""
    cited: frozenset[int] = frozenset()
    context: str = ""
    note: str | None = None

    @property
    def checkable(self) -> bool:
        return self.note is None


@dataclass
class SplitAnswer:
    sentences: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    abstained: bool = False


def is_abstention(sentence: str) -> bool:
    return bool(_ABSTENTION.search(sentence))


def _last_word(sentence: str) -> str:
    found = list(words(sentence))
    return found[-1].lower() if found else ""


def _clauses(sentence: str) -> list[str]:
    """The sentence, or its clauses when it is long and each clause makes a statement."""
    if len(sentence.split()) <= CLAUSE_WORDS:
        return [sentence]
    parts = [p.strip(" ,;") for p in _CLAUSE_BREAK.split(sentence)]
    parts = [p for p in parts if p]
    if len(parts) < 2 or any(len(content_terms(p)) < _MIN_CLAUSE_TERMS for p in parts):
        return [sentence]
    return parts


def split_answer(text: str, question: str | None = None) -> SplitAnswer:
    """The claims of `text` in order; see the module docstring for what is set aside."""
    result = SplitAnswer()
    asked = question_content_terms(question) if question else set()
    for raw in split_sentences(text.strip()):
        sentence = strip_markers(raw).strip()
        if not re.search(r"\w", sentence):
            continue
        if is_abstention(sentence):
            result.abstained = True
            continue
        index = len(result.sentences)
        result.sentences.append(sentence)
        cited = frozenset(cited_markers(raw))
        note = _not_a_claim(sentence, asked)
        if note is not None:
            result.claims.append(Claim(sentence, index, cited, sentence, note))
            continue
        for clause in _clauses(sentence):
            fragment = question is not None and len(content_terms(clause)) <= FRAGMENT_TERMS
            context = f"{question} {clause}" if fragment else clause
            result.claims.append(Claim(clause, index, cited, context))
    return result


def _not_a_claim(sentence: str, asked: set[str]) -> str | None:
    if _YES_NO.match(sentence):
        return NOTE_BARE_YES_NO
    if _last_word(sentence) in _DANGLING:
        return NOTE_INCOMPLETE
    terms = content_terms(sentence)
    if asked and terms and all(t in asked for t in terms):
        return NOTE_RESTATES
    return None

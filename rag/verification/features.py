"""The signals the deterministic verifier weighs, for every claim against every passage.

One row per (claim, passage), computed with matrix products over a small vocabulary (the
claims' terms), so a 50-claim answer against 5 passages costs a few milliseconds. Within each
passage the row describes the window that holds most of the claim (see rag.verification.evidence).

| feature | what it measures |
|---|---|
| coverage | weighted share of the claim's terms in the window (rare words weigh more) |
| coverage_plain | the same share, every term weighing one |
| passage_coverage | weighted share anywhere in the passage, heading included |
| bigrams | share of the claim's adjacent term pairs that occur adjacent in the window |
| similarity | cosine of the claim's embedding and the passage's |
| keys_missing | share of the claim's numbers and names missing around the window |
| number_mismatch | the claim has a number the window lacks while the window gives others |
| negation_mismatch | the claim is negated and the window not, or the other way round |
| claim_negated, window_negated | each side's negation on its own |
| antonyms | opposite words split between claim and window (increase/decrease...), at most 2 |
| length | log(1 + number of the claim's terms) |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.verification.claims import Claim
from rag.verification.evidence import NEGATION, Evidence, FloatArray, Window
from rag.verification.rules import (
    ClaimFacts,
    PassageFacts,
    names,
    negated,
    numbers,
    passage_facts,
    verdict,
)
from rag.verification.text import (
    is_stopword,
    key_terms,
    normalize_term,
    question_content_terms,
    weighted_terms,
    words,
)

FEATURES = (
    "coverage",
    "coverage_plain",
    "passage_coverage",
    "bigrams",
    "similarity",
    "keys_missing",
    "number_mismatch",
    "negation_mismatch",
    "claim_negated",
    "window_negated",
    "antonyms",
    "length",
)

OFF_TOPIC_FLOOR = 0.3
"""With a question, coverage counts this much when the evidence holds none of its words."""

_OPPOSITES = """
    increase:decrease increase:reduce increase:decline increase:lower higher:lower more:less
    more:fewer greater:lower greater:smaller larger:smaller longer:shorter faster:slower
    better:worse high:low positive:negative upregulate:downregulate promote:inhibit
    promote:suppress activate:inhibit activate:suppress induce:inhibit induce:suppress
    stimulate:inhibit enhance:reduce enhance:impair improve:worsen gain:loss rise:decline
    rise:fall raise:lower accelerate:delay present:absent resistant:sensitive protect:damage
    elevate:reduce strengthen:weaken stabilize:destabilize agonist:antagonist direct:indirect
    sufficient:insufficient dependent:independent essential:dispensable benefit:harm
    before:after above:below majority:minority maximum:minimum success:failure
"""


@lru_cache(maxsize=1)
def _opposites() -> list[tuple[str, str]]:
    pairs = (pair.split(":") for pair in _OPPOSITES.split())
    return [(normalize_term(a), normalize_term(b)) for a, b in pairs]


@dataclass
class _ClaimTerms:
    weights: dict[str, float]
    keys: set[str]
    bigrams: set[tuple[str, str]]
    negated: bool
    numbers: set[str]


def _bigrams(text: str) -> set[tuple[str, str]]:
    terms = [normalize_term(w) for w in words(text) if not is_stopword(w)]
    return set(zip(terms, terms[1:], strict=False))


def _antonyms(claim: set[str], window: set[str]) -> int:
    count = 0
    for a, b in _opposites():
        if (a in claim and b not in claim and b in window and a not in window) or (
            b in claim and a not in claim and a in window and b not in window
        ):
            count += 1
    return min(count, 2)


@dataclass
class Rows:
    """Feature rows, claim-major: row `c * passages + p` is claim c against passage p.

    `rules` holds what the fixed rules (rag.verification.rules) say of each row.
    """

    values: FloatArray
    windows: list[Window]
    passages: int
    rules: npt.NDArray[np.int_]


def featurize(
    claims: list[Claim],
    evidence: Evidence,
    claim_vectors: FloatArray,
    question: str | None = None,
) -> Rows:
    """Every claim against every passage (`evidence.vectors` must be set).

    With a question, a claim's words that merely repeat the question prove nothing: the three
    coverage features count only its other words (all of them if it has no other), scaled
    down to OFF_TOPIC_FLOOR when the window and its neighbours hold none of the question's
    words. "The fleet controller is written in Python" then covers nothing of a passage that
    says Rust, and "Gustave Eiffel approves restores" nothing of one about the tower.
    """
    assert evidence.vectors is not None
    asked = question_content_terms(question) if question else set()
    parsed = [
        _ClaimTerms(
            weights=weighted_terms(c.context),
            keys=key_terms(c.context),
            bigrams=_bigrams(c.context),
            negated=bool(NEGATION.search(c.context)),
            numbers=numbers(c.context),
        )
        for c in claims
    ]
    vocabulary = {t: i for i, t in enumerate({t for ct in parsed for t in ct.weights})}
    size = max(len(vocabulary), 1)
    weights = np.zeros((len(claims), size))
    keys = np.zeros((len(claims), size))
    every = np.zeros((len(claims), size))
    for row, claim_terms in enumerate(parsed):
        novel = claim_terms.weights.keys() - asked or claim_terms.weights.keys()
        for term, weight in claim_terms.weights.items():
            weights[row, vocabulary[term]] = weight if term in novel else 0.0
            every[row, vocabulary[term]] = 1.0
            keys[row, vocabulary[term]] = term in claim_terms.keys
    present = (weights > 0).astype(np.float64)

    def indicator(terms: set[str]) -> FloatArray:
        vector = np.zeros(size)
        for term in terms & vocabulary.keys():
            vector[vocabulary[term]] = 1.0
        return vector

    sentence_terms = [set(t) for t in evidence.terms]
    n_passages = len(evidence.hits)
    window_sets = [evidence.window_terms(w) for w in evidence.windows]
    in_window = np.array([indicator(s) for s in window_sets]).reshape(-1, size)
    passage_terms = [
        evidence.headings[p].union(
            *(sentence_terms[i] for i, q in enumerate(evidence.passage_of) if q == p)
        )
        for p in range(n_passages)
    ]
    in_passage = np.array([indicator(t) for t in passage_terms]).reshape(-1, size)
    facts = _document_facts(evidence, passage_terms)
    total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    count = np.maximum(present.sum(axis=1, keepdims=True), 1.0)
    coverage = weights @ in_window.T / total  # claims × windows
    plain = present @ in_window.T / count
    literal = every @ in_window.T / np.maximum(every.sum(axis=1, keepdims=True), 1.0)
    passage_coverage = weights @ in_passage.T / total  # claims × passages
    similarity = np.asarray(claim_vectors, dtype=np.float64) @ evidence.vectors.T
    window_passage = np.array([w.passage for w in evidence.windows])

    values = np.zeros((len(claims) * n_passages, len(FEATURES)))
    rules = np.zeros(len(claims) * n_passages, dtype=np.int_)
    chosen: list[Window] = []
    for c, terms in enumerate(parsed):
        n_keys = max(keys[c].sum(), 1.0)
        claim_facts = ClaimFacts(
            numbers=terms.numbers,
            names={t: w for t, w in names(claims[c].context).items() if t not in asked},
            negated=negated(claims[c].text),
        )
        for p in range(n_passages):
            candidates = np.flatnonzero(window_passage == p)
            best = int(candidates[np.argmax(coverage[c, candidates])])
            window = evidence.windows[best]
            chosen.append(window)
            around = _around(evidence, window, sentence_terms)
            about = _share(asked, around) if asked else 1.0
            scale = OFF_TOPIC_FLOOR + (1 - OFF_TOPIC_FLOOR) * about
            text = evidence.text(window)
            window_negated = bool(NEGATION.search(text))
            given = numbers(text)
            values[c * n_passages + p] = (
                coverage[c, best] * scale,
                plain[c, best] * scale,
                passage_coverage[c, p] * scale,
                _share(terms.bigrams, _bigrams(text)),
                similarity[c, p],
                float(keys[c] @ (1 - indicator(around))) / n_keys,
                float(bool(terms.numbers - given) and bool(given)),
                float(terms.negated != window_negated),
                float(terms.negated),
                float(window_negated),
                _antonyms(set(terms.weights), window_sets[best]),
                math.log1p(len(terms.weights)),
            )
            rules[c * n_passages + p] = verdict(
                claim_facts,
                facts[p],
                asked=asked,
                around=around,
                window_text=text,
                window_coverage=float(literal[c, best]),
                novel_coverage=float(passage_coverage[c, p]),
            )
    return Rows(values, chosen, n_passages, rules)


def _document_facts(evidence: Evidence, passage_terms: list[set[str]]) -> list[PassageFacts]:
    """Each passage's facts, pooled with those of the other passages of its document."""
    by_document: dict[str, list[int]] = {}
    for p, hit in enumerate(evidence.hits):
        by_document.setdefault(hit.chunk.document_id, []).append(p)
    pooled: dict[str, PassageFacts] = {}
    for document, members in by_document.items():
        chunks = [evidence.hits[p].chunk for p in members]
        text = " ".join(f"{c.title} {c.section or ''} {c.text}" for c in chunks)
        pooled[document] = passage_facts(text, set().union(*(passage_terms[p] for p in members)))
    return [pooled[hit.chunk.document_id] for hit in evidence.hits]


def _share(wanted: set[Any], found: set[Any]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 1.0


def _around(evidence: Evidence, window: Window, sentence_terms: list[set[str]]) -> set[str]:
    """The window's terms plus its neighbours' in the same passage: names and numbers may sit
    in the sentence before ("In 2019, ...")."""
    found = set(evidence.headings[window.passage])
    for i in range(max(window.first - 1, 0), min(window.last + 2, len(sentence_terms))):
        if evidence.passage_of[i] == window.passage:
            found |= sentence_terms[i]
    return found

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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.verification.claims import Claim
from rag.verification.evidence import NEGATION, BoolArray, Evidence, FloatArray, Window
from rag.verification.rules import (
    ClaimFacts,
    PassageFacts,
    names,
    negated,
    numbers,
    passage_facts,
    verdicts,
)
from rag.verification.sets import indicators, shares
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


@dataclass
class Rows:
    """Feature rows, claim-major: row `c * passages + p` is claim c against passage p.

    `rules` (what the fixed rules of rag.verification.rules say) and `window` (the index in
    `evidence.windows` of the window each row describes) are claims × passages.
    """

    values: FloatArray
    window: npt.NDArray[np.int_]
    rules: npt.NDArray[np.int_]


@dataclass
class _Windows:
    """What is looked up of the windows some claim's row describes."""

    terms: list[set[str]]
    around: list[set[str]]
    """The window's terms and its neighbours' (see `_around`)."""
    text: list[str]
    numbers: list[set[str]]
    bigrams: list[set[tuple[str, str]]]
    negated: BoolArray


def _windows(evidence: Evidence, chosen: Sequence[int], terms: list[set[str]]) -> _Windows:
    sentence_terms = [set(t) for t in evidence.terms]
    text = [evidence.text(evidence.windows[w]) for w in chosen]
    return _Windows(
        terms=[terms[w] for w in chosen],
        around=[_around(evidence, evidence.windows[w], sentence_terms) for w in chosen],
        text=text,
        numbers=[numbers(t) for t in text],
        bigrams=[_bigrams(t) for t in text],
        negated=np.array([bool(NEGATION.search(t)) for t in text], dtype=bool),
    )


def _antonyms(claims: Sequence[set[str]], windows: Sequence[set[str]]) -> FloatArray:
    """Opposite words split between each claim and each window, at most 2."""
    pairs = _opposites()

    def sides(sets: Sequence[set[str]]) -> tuple[FloatArray, FloatArray]:
        a = np.array([[x in s and y not in s for x, y in pairs] for s in sets], dtype=np.float64)
        b = np.array([[y in s and x not in s for x, y in pairs] for s in sets], dtype=np.float64)
        return a.reshape(len(sets), len(pairs)), b.reshape(len(sets), len(pairs))

    claim_a, claim_b = sides(claims)
    window_a, window_b = sides(windows)
    return np.minimum(claim_a @ window_b.T + claim_b @ window_a.T, 2.0)


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

    Every feature is a claims × windows matrix; each claim's row for a passage is taken at
    the window of that passage that covers most of the claim.
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
    for row, claim_terms in enumerate(parsed):
        novel = claim_terms.weights.keys() - asked or claim_terms.weights.keys()
        for term, weight in claim_terms.weights.items():
            weights[row, vocabulary[term]] = weight if term in novel else 0.0
    every = indicators([ct.weights.keys() for ct in parsed], vocabulary)
    keys = indicators([ct.keys & ct.weights.keys() for ct in parsed], vocabulary)
    present = (weights > 0).astype(np.float64)

    n_passages = len(evidence.hits)
    passage_terms = [
        evidence.headings[p].union(
            *(set(evidence.terms[i]) for i, q in enumerate(evidence.passage_of) if q == p)
        )
        for p in range(n_passages)
    ]
    window_terms = [evidence.window_terms(w) for w in evidence.windows]
    in_window = indicators(window_terms, vocabulary)
    total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    coverage = weights @ in_window.T / total  # claims × windows
    passage_coverage = weights @ indicators(passage_terms, vocabulary).T / total  # × passages

    # Each claim's window in each passage: the first of highest coverage. Only those windows
    # (`chosen`) are described further; `at` says which of them each (claim, passage) took.
    window_passage = np.array([w.passage for w in evidence.windows])
    own = window_passage[None, :] == np.arange(n_passages)[:, None]  # passages × windows
    best = np.where(own[None], coverage[:, None, :], -np.inf).argmax(axis=2)  # claims × passages
    chosen, at = np.unique(best, return_inverse=True)
    at = at.reshape(best.shape)
    windows = _windows(evidence, chosen.tolist(), window_terms)

    def pick(matrix: FloatArray) -> FloatArray:
        """claims × chosen windows → claims × passages."""
        return np.take_along_axis(matrix, at, axis=1)

    about = np.array([_share(asked, a) for a in windows.around])  # 1.0 without a question
    scale = (OFF_TOPIC_FLOOR + (1 - OFF_TOPIC_FLOOR) * about)[at]
    plain = present @ in_window[chosen].T / np.maximum(present.sum(axis=1, keepdims=True), 1.0)
    literal = pick(every @ in_window[chosen].T / np.maximum(every.sum(axis=1, keepdims=True), 1))
    keys_missing = keys @ (1 - indicators(windows.around, vocabulary)).T
    lacks = shares([ct.numbers for ct in parsed], windows.numbers) < 1.0
    gives = np.array([bool(n) for n in windows.numbers])
    claim_negated = np.array([float(ct.negated) for ct in parsed]).reshape(-1, 1)
    window_negated = windows.negated[at].astype(np.float64)
    length = np.log1p(np.array([float(len(ct.weights)) for ct in parsed])).reshape(-1, 1)
    columns = (
        coverage[np.arange(len(claims))[:, None], best] * scale,
        pick(plain) * scale,
        passage_coverage * scale,
        pick(shares([ct.bigrams for ct in parsed], windows.bigrams)),
        np.asarray(claim_vectors, dtype=np.float64) @ evidence.vectors.T,
        pick(keys_missing) / np.maximum(keys.sum(axis=1, keepdims=True), 1.0),
        pick((lacks & gives[None, :]).astype(np.float64)),
        (claim_negated != window_negated).astype(np.float64),
        np.broadcast_to(claim_negated, best.shape),
        window_negated,
        pick(_antonyms([set(ct.weights) for ct in parsed], windows.terms)),
        np.broadcast_to(length, best.shape),
    )
    values = np.stack(columns, axis=-1).reshape(-1, len(FEATURES))

    claim_facts = [
        ClaimFacts(
            numbers=parsed[c].numbers,
            names={t: w for t, w in names(claim.context).items() if t not in asked},
            negated=negated(claim.text),
        )
        for c, claim in enumerate(claims)
    ]
    rules = verdicts(
        claim_facts,
        _document_facts(evidence, passage_terms),
        asked=bool(asked),
        on_topic=(about > 0)[at],
        window_negated=np.array([negated(t) for t in windows.text], dtype=bool)[at],
        window_coverage=literal,
        novel_coverage=passage_coverage,
    )
    return Rows(values, best, rules)


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

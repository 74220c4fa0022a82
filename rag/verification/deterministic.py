"""The deterministic verifier: the fitted model of `rag.verification.model` over `features`.

Every claim is scored against every passage; its label comes from the passage that supports it
best, and that passage's window is its evidence (for a claim not found: the nearest miss).
Passages other than the best are cited too when they support the claim nearly as well, or when
the model cited them itself and they support it. One rule is not learned: when the
question names a year, evidence that gives other years but not that one is about something
else ("who won in 2019?" is not answered by the 2017 winner).
Deterministic for a given embedder; the only model call is one batch embedding the claims.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rag.embedding import Embedder
from rag.models import ClaimLabel
from rag.verification import Judgement, Verdict
from rag.verification.claims import Claim
from rag.verification.evidence import Evidence, FloatArray, Window
from rag.verification.features import featurize
from rag.verification.model import VerifierModel, load_model
from rag.verification.rules import CONTRADICTING, OK

CITE_MARGIN = 0.05
"""Other passages whose support is within this of the best one are cited too."""

CONTRADICTION_FLOOR = 0.5
"""A rule that contradicts (rag.verification.rules) labels the claim CONTRADICTED when it holds
for the passage closest to the claim, and that passage scores at least this share of the
support threshold: the wrong number itself lowers the score of a claim that is otherwise
the passage's own words."""


class DeterministicVerifier:
    """Thread-safe: it holds only the model and the (thread-safe) embedder."""

    def __init__(self, embedder: Embedder, model: VerifierModel | None = None) -> None:
        self.embedder = embedder
        self.model = model or load_model()

    @property
    def name(self) -> str:
        return f"deterministic@{self.model.version}"

    def judge(self, claims: Sequence[Claim], evidence: Evidence, question: str | None) -> Verdict:
        if not claims:
            return Verdict([], self.name)
        if evidence.vectors is None:
            texts = [h.chunk.embedding_text() for h in evidence.hits]
            evidence.vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float64)
        vectors = np.asarray(self.embedder.embed_documents([c.context for c in claims]))
        rows = featurize(list(claims), evidence, vectors, question)
        support, contradiction = self.model.probabilities(rows.values)
        shape = rows.window.shape  # claims × passages
        support, contradiction = support.reshape(shape), contradiction.reshape(shape)
        asked = _years(question) if question else set()
        if asked:
            away = np.zeros(len(evidence.windows), dtype=bool)
            for w in np.unique(rows.window):
                away[w] = _elsewhere(asked, evidence, evidence.windows[w])
            support = np.where(away[rows.window], 0.0, support)
        return Verdict(
            [
                self._judgement(
                    claim,
                    support[c],
                    contradiction[c],
                    rows.rules[c],
                    [evidence.windows[w] for w in rows.window[c]],
                )
                for c, claim in enumerate(claims)
            ],
            self.name,
        )

    def _judgement(
        self,
        claim: Claim,
        support: FloatArray,
        contradiction: FloatArray,
        rules: npt.NDArray[np.int_],
        windows: list[Window],
    ) -> Judgement:
        nearest = int(np.argmax(support))
        close = support[nearest] >= self.model.support_threshold * CONTRADICTION_FLOOR
        if rules[nearest] in CONTRADICTING and close:
            # The passage closest to the claim says otherwise.
            return Judgement(ClaimLabel.CONTRADICTED, float(support[nearest]), [windows[nearest]])
        support = np.where(rules == OK, support, 0.0)
        best = int(np.argmax(support))
        score = float(support[best])
        if score < self.model.support_threshold:
            return Judgement(ClaimLabel.NOT_FOUND, score, [windows[nearest]])
        if contradiction[best] >= self.model.contradiction_threshold:
            return Judgement(ClaimLabel.CONTRADICTED, score, [windows[best]])
        others = [
            p
            for p in np.argsort(-support, kind="stable")
            if p != best
            and support[p] >= self.model.support_threshold
            and (support[p] >= score - CITE_MARGIN or p + 1 in claim.cited)
        ]
        return Judgement(
            ClaimLabel.SUPPORTED, score, [windows[best], *(windows[p] for p in others)]
        )


_YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")


def _years(text: str) -> set[str]:
    return set(_YEAR.findall(text))


def _elsewhere(asked: set[str], evidence: Evidence, window: Window) -> bool:
    """The window and its neighbours give years, but not the one the question asks about."""
    first = max(window.first - 1, 0)
    last = min(window.last + 1, len(evidence.sentences) - 1)
    text = " ".join(
        evidence.sentences[i]
        for i in range(first, last + 1)
        if evidence.passage_of[i] == window.passage
    )
    hit = evidence.hits[window.passage].chunk
    given = _years(f"{hit.title} {hit.section or ''} {text}")
    return bool(given) and not (asked & given)

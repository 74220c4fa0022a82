"""Keyword vectors for hybrid search, computed by our code (fastembed cannot fetch models here).

A chunk's vector holds BM25 term-frequency weights; the store applies IDF itself (Qdrant's `idf`
modifier), so document weights never go stale as the collection grows. Terms are lower-cased,
stop-word-filtered, Porter-stemmed words, hashed to stable 31-bit ids.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from functools import lru_cache

from rag.models import SparseVector

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves
    """.split()  # noqa: SIM905
)


@lru_cache(maxsize=1)
def _stemmer() -> object:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=65536)
def _term_id(word: str) -> int:
    stem: str = _stemmer().stem(word)  # type: ignore[attr-defined]
    return zlib.crc32(stem.encode("utf-8")) & 0x7FFFFFFF


def terms(text: str) -> list[int]:
    return [
        _term_id(word)
        for word in _WORD.findall(text.lower())
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit())
    ]


class Bm25Encoder:
    """BM25 with a fixed average length: chunks are length-bounded, so one constant serves."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_length: float = 80.0):
        self.k1, self.b, self.avg_length = k1, b, avg_length

    def encode_document(self, text: str) -> SparseVector:
        counts = Counter(terms(text))
        norm = self.k1 * (1 - self.b + self.b * sum(counts.values()) / self.avg_length)
        indices = sorted(counts)
        values = [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in indices]
        return SparseVector(indices=indices, values=values)

    def encode_query(self, text: str) -> SparseVector:
        indices = sorted(set(terms(text)))
        return SparseVector(indices=indices, values=[1.0] * len(indices))

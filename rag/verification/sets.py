"""Set questions asked of many pairs at once, as matrix products over indicator rows."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Any

import numpy as np

from rag.verification.evidence import FloatArray


def indicators(sets: Sequence[Collection[Hashable]], vocabulary: dict[Any, int]) -> FloatArray:
    """One row per set: 1.0 in the column of each of its members that is in `vocabulary`."""
    matrix = np.zeros((len(sets), max(len(vocabulary), 1)))
    for row, members in enumerate(sets):
        matrix[row, [vocabulary[m] for m in members if m in vocabulary]] = 1.0
    return matrix


def shares(
    wanted: Sequence[Collection[Hashable]], found: Sequence[Collection[Hashable]]
) -> FloatArray:
    """len(wanted[i] & found[j]) / len(wanted[i]) for every i, j; 1.0 where wanted[i] is empty."""
    vocabulary = {m: i for i, m in enumerate({m for members in wanted for m in members})}
    a, b = indicators(wanted, vocabulary), indicators(found, vocabulary)
    sizes = a.sum(axis=1, keepdims=True)
    return np.where(sizes > 0, a @ b.T / np.maximum(sizes, 1.0), 1.0)

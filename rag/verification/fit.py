"""Fitting the deterministic verifier's model on labelled (claim, passage) feature rows.

Two L2-regularised logistic regressions on standardised features (see `model`), then the two
thresholds chosen on the same rows: the pair that keeps at least `keep_target` of SUPPORT claims
while keeping the fewest NEI and CONTRADICT ones, with the verifier's fixed rules applied (a
claim whose number the evidence contradicts is never kept). Report on rows it was not fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import InvalidInput
from rag.verification.evidence import BoolArray, FloatArray
from rag.verification.features import FEATURES
from rag.verification.model import Logistic, VerifierModel
from rag.verification.rules import OK

SUPPORT, CONTRADICT, NEI = "SUPPORT", "CONTRADICT", "NEI"
LABELS = (SUPPORT, CONTRADICT, NEI)
REGULARISATION = 0.1
"""sklearn's C: smaller is smoother. 0.1 held out as well as 1.0 on SciFact and is steadier."""


def _logistic(values: FloatArray, positive: Sequence[bool]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=REGULARISATION, max_iter=5000).fit(values, list(positive))
    return Logistic(
        coefficients=[round(float(v), 6) for v in fitted.coef_[0]],
        intercept=round(float(fitted.intercept_[0]), 6),
    )


def kept(
    support: FloatArray,
    contradiction: FloatArray,
    support_threshold: float,
    contradiction_threshold: float,
) -> BoolArray:
    """Which rows a verifier with these thresholds labels SUPPORTED."""
    result: BoolArray = (support >= support_threshold) & (contradiction < contradiction_threshold)
    return result


def choose_thresholds(
    support: FloatArray, contradiction: FloatArray, labels: np.ndarray[Any, Any], keep_target: float
) -> tuple[float, float]:
    """The thresholds that keep ≥ keep_target of SUPPORT and the fewest NEI, then the fewest
    CONTRADICT (NEI to two decimals first, so noise in the third does not flip the choice)."""
    is_support = labels == SUPPORT
    best: tuple[float, float, float, float] | None = None
    for s in np.quantile(support[is_support], np.linspace(0.0, 1.0 - keep_target, 41)):
        for c in np.linspace(0.05, 1.0001, 96):
            keep = kept(support, contradiction, float(s), float(c))
            if keep[is_support].mean() < keep_target:
                continue
            nei = round(float(keep[labels == NEI].mean()), 2)
            contradict = float(keep[labels == CONTRADICT].mean())
            if best is None or (nei, contradict) < best[:2]:
                best = (nei, contradict, float(s), float(c))
    assert best is not None  # the lowest quantile with c above 1 keeps everything
    return round(best[2], 4), round(best[3], 4)


def fit_model(
    values: FloatArray,
    labels: Sequence[str],
    rules: npt.NDArray[np.int_],
    *,
    version: str,
    keep_target: float = 0.9,
    fitted_on: dict[str, Any] | None = None,
) -> VerifierModel:
    """Fit on rows labelled SUPPORT, CONTRADICT or NEI (each label needs a few rows) and what
    the fixed rules say of them (`Rows.rules`)."""
    y = np.asarray(labels)
    for label in LABELS:
        if (y == label).sum() < 5:
            raise InvalidInput(f"fitting needs at least 5 {label} pairs; got {(y == label).sum()}")
    mean = values.mean(axis=0)
    scale = np.where(values.std(axis=0) > 1e-9, values.std(axis=0), 1.0)
    scaled = (values - mean) / scale
    covered = y != CONTRADICT
    support = _logistic(scaled[covered], y[covered] == SUPPORT)
    on_topic = y != NEI
    contradiction = _logistic(scaled[on_topic], y[on_topic] == CONTRADICT)
    model = VerifierModel(
        version=version,
        features=list(FEATURES),
        mean=[round(float(v), 6) for v in mean],
        scale=[round(float(v), 6) for v in scale],
        support=support,
        contradiction=contradiction,
        support_threshold=0.5,
        contradiction_threshold=1.0,
        fitted_on=fitted_on or {},
    )
    p_support, p_contradiction = model.probabilities(values)
    s, c = choose_thresholds(p_support * (rules == OK), p_contradiction, y, keep_target)
    return model.model_copy(update={"support_threshold": s, "contradiction_threshold": c})

"""The deterministic verifier's fitted model: two logistic regressions over `FEATURES`.

- *support*: does the passage state the claim? Fitted on SUPPORT against NEI pairs.
- *contradiction*: among claims a passage covers, does it say otherwise? Fitted on CONTRADICT
  against SUPPORT pairs.

A claim is supported when P(support) ≥ `support_threshold` and P(contradiction) <
`contradiction_threshold`; contradicted when both are at or above them; otherwise not found.
The coefficients, the feature scaling, the thresholds and what they were fitted on live in one
JSON file (`deterministic.json` beside this module), written by `rag eval grounding --fit` and
readable by anyone who wants to know why a claim was dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from rag.errors import ConfigError
from rag.verification.evidence import FloatArray
from rag.verification.features import FEATURES

DEFAULT_MODEL_PATH = Path(__file__).with_name("deterministic.json")


class Logistic(BaseModel):
    coefficients: list[float]
    intercept: float

    def probability(self, scaled: FloatArray) -> FloatArray:
        logits = scaled @ np.asarray(self.coefficients) + self.intercept
        result: FloatArray = 1.0 / (1.0 + np.exp(-logits))
        return result


class VerifierModel(BaseModel):
    version: str = Field(description="Recorded on every answer it judged.")
    features: list[str]
    mean: list[float]
    scale: list[float]
    support: Logistic
    contradiction: Logistic
    support_threshold: float
    contradiction_threshold: float
    fitted_on: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _matches_code(self) -> VerifierModel:
        if tuple(self.features) != FEATURES:
            raise ValueError(
                f"fitted on features {self.features}, but the code computes {list(FEATURES)}: "
                "refit with `rag eval grounding --fit`"
            )
        width = len(FEATURES)
        sizes = {len(self.mean), len(self.scale)}
        sizes |= {len(self.support.coefficients), len(self.contradiction.coefficients)}
        if sizes != {width}:
            raise ValueError(f"every vector must have {width} values")
        return self

    def probabilities(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        """P(support) and P(contradiction) for each feature row."""
        scaled = (values - np.asarray(self.mean)) / np.asarray(self.scale)
        return self.support.probability(scaled), self.contradiction.probability(scaled)


def load_model(path: Path | None = None) -> VerifierModel:
    path = path or DEFAULT_MODEL_PATH
    try:
        return VerifierModel.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"verifier model {path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        first = str(exc).splitlines()[-1].strip()
        raise ConfigError(f"verifier model {path} is invalid: {first}") from None

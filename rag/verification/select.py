"""Which verifier checks an answer: the request's policy says, the data's sensitivity limits.

`deterministic` always runs as is. A catalog model (or `self`, the model that answered) runs as
an `LlmVerifier` over the router's adapter for it, unless it may not see the request's data (a
private request is never verified by a closed API), it is the extractive (it writes no
judgement), or its circuit breaker is open: then the deterministic verifier decides and the
answer says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import ConfigError
from rag.generation.model_catalog import DETERMINISTIC, SELF, SENSITIVITY_RANK
from rag.generation.router import Router, RouteRequest
from rag.models import Route
from rag.verification import Verifier
from rag.verification.deterministic import DeterministicVerifier
from rag.verification.llm import LlmVerifier


@dataclass(frozen=True)
class Choice:
    verifier: Verifier
    requested: str
    fallback: str | None = None


class Verifiers:
    def __init__(
        self,
        deterministic: DeterministicVerifier,
        *,
        router: Router | None = None,
        default: str = DETERMINISTIC,
        timeout_s: float = 60.0,
    ) -> None:
        self.deterministic = deterministic
        self.router = router
        self.default = default
        self.timeout_s = timeout_s
        if router is not None:
            problem = router.catalog.verifier_problem(default)
            if problem:
                raise ConfigError(f"verification.verifier: {problem}")

    def requested(self, request: RouteRequest | None) -> str:
        """Who the policy of `request` asks to verify: deterministic, a model, or self."""
        if self.router is None:
            return DETERMINISTIC
        return self.router.policy(request)[1].verifier or self.default

    def choose(self, request: RouteRequest | None, route: Route | None) -> Choice:
        """The verifier for an answer to `request` that `route` describes (None: no routing)."""
        if self.router is None:
            return Choice(self.deterministic, DETERMINISTIC)
        _, policy = self.router.policy(request)
        requested = policy.verifier or self.default
        if requested == DETERMINISTIC:
            return Choice(self.deterministic, requested)
        name = route.model if requested == SELF and route is not None else requested
        if requested == SELF and (route is None or route.degraded):
            return Choice(
                self.deterministic, requested, "the extractive answered: it cannot verify"
            )
        entry = self.router.catalog.models[name]
        if entry.backend == "extractive":
            return Choice(self.deterministic, requested, "the extractive cannot verify")
        if SENSITIVITY_RANK[policy.sensitivity] > SENSITIVITY_RANK[entry.sensitivity_ceiling]:
            return Choice(
                self.deterministic,
                requested,
                f"{name} may not see {policy.sensitivity} data (max_sensitivity "
                f"{entry.sensitivity_ceiling})",
            )
        if self.router.breakers[name].snapshot().get("state") == "open":
            return Choice(self.deterministic, requested, f"{name}: circuit breaker open")
        generator = self.router.generator(name, self.timeout_s)
        verifier = LlmVerifier(
            generator,
            name,
            self.deterministic,
            timeout_s=self.timeout_s,
            max_tokens=entry.max_tokens,
        )
        return Choice(verifier, requested)

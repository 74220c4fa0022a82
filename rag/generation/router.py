"""A `RoutedGenerator`: picks a catalog model per request and falls back when it fails.

Choosing (`Router.plan`): a request may name a model, give a policy (a name or an inline
`Policy`), or neither (the catalog's default policy). The policy filters the catalog:

- sensitivity: a model sees a request only if its `sensitivity_ceiling` allows the request's
  level, so `private` data only ever reaches self-hosted models. The filter builds the whole
  chain, fallbacks included, so no failure can route private text elsewhere.
- `max_cost_usd`: estimated before the call as prompt tokens × input price + the completion
  budget (`max_tokens`) × output price. Prompt tokens are estimated as characters / 4 (OpenAI's
  rule of thumb for English), which costs microseconds; the recorded cost uses the usage the
  model reports.
- `max_latency_ms`: models whose `latency_ms` hint is above it are left out, and it is each
  API call's timeout; a fallback is not started once it has been spent (except the extractive).
- `quality`: the lowest acceptable tier; and `prompt ≈ tokens` must fit an API model's window.
The eligible models form the chain in the policy's `models` order, else catalog order, or
sorted by `prefer`. `measured` sorts by the scoreboard (rag.scoreboard, through `Router.scores`):
scored models by their upper confidence bound (so one with few observations is tried a little),
then unscored ones in order; each route records the score that placed its model. A named
model is checked against the same policy. If nothing is eligible
the request is refused (`PolicyUnsatisfiable`, with each model's reason). The extractive is
not a candidate unless named: it is the safety net appended to every chain.

Falling back (`Router.stream`): each model is tried in order. Any error falls back: retryable
ones (429, 5xx, timeouts) obviously; non-retryable ones (bad request, bad key, unknown model)
too, since another model may well answer, but they are recorded with `retryable: false` so a
misconfiguration is visible on every answer. Every backend failure counts towards the model's
circuit breaker; an `InvalidInput` (the request does not fit that model) does not. A stream
falls back only until its first token; after that an error ends the stream. The router never
waits: a model whose Retry-After or breaker cooldown has not passed is skipped (and recorded).
`generate` is `stream` collected, so every answer has a time to first token.

Personal data (`Policy.pii`, rag.privacy): the data's sensitivity is the higher of the policy's
and the request's own (`RouteRequest.sensitivity`, its collections' labels). Under `mask` (opted
into: detection can miss) a model below it is still eligible, but is sent the prompt with
personal data replaced by placeholders and its text (deltas too) has them restored; models that
may see the data get it in clear, so a fallback to a self-hosted model is not masked. One
`Masker` per request keeps placeholders the same across retries. If masking fails the model is
skipped, never sent clear. `block` (the default) and `allow` leave such a model out (allow only
says no masking is wanted).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from rag import metrics
from rag.embedding import Embedder
from rag.errors import (
    AllModelsFailed,
    BackendError,
    GenerationError,
    InvalidInput,
    PolicyUnsatisfiable,
    RagError,
    UnknownModel,
)
from rag.generation import Done, EventStream, Generator, TextDelta, collect
from rag.generation.breaker import CircuitBreaker, Clock
from rag.generation.model_catalog import (
    QUALITY_RANK,
    SENSITIVITY_RANK,
    ModelCatalog,
    ModelEntry,
    Policy,
    Sensitivity,
    build_generator,
)
from rag.generation.prompts import INSTRUCTIONS
from rag.models import Attempt, Generation, GroundedPrompt, Route, RouteScore
from rag.privacy.pii import Masker, PiiDetector, default_detector

if TYPE_CHECKING:
    from rag.scoreboard import Score

log = logging.getLogger(__name__)
UNSCORED = RouteScore(quality=None, n=0, source="none")

ROUTER_ID = "router"
CHARS_PER_TOKEN = 4
_PASSAGE_OVERHEAD_CHARS = 16  # "[n] (title / section) " and the line break
_MAX_CACHED = 64


class RouteRequest(BaseModel):
    """A request's say in routing: a catalog model, a policy (name or inline), or neither."""

    model: str | None = None
    policy: str | Policy | None = None
    sensitivity: Sensitivity | None = Field(
        default=None,
        description="The data's own sensitivity (its collections' labels, set by the answerer): "
        "raises the policy's, never lowers it.",
    )


@dataclass(frozen=True)
class Link:
    entry: ModelEntry
    reason: str
    safety_net: bool = False
    masked: bool = False
    score: RouteScore | None = None


@dataclass
class Plan:
    policy_name: str
    policy: Policy
    links: list[Link]
    timeout_s: float | None
    prompt_tokens_estimate: int
    skipped: dict[str, str] = field(default_factory=dict)


def estimate_prompt_tokens(prompt: GroundedPrompt) -> int:
    """Characters / 4, rounded up: within ~20% for English, and costs no tokenizer."""
    chars = len(INSTRUCTIONS) + len(prompt.question) + 40
    for p in prompt.passages:
        chars += len(p.text) + len(p.title) + len(p.section or "") + _PASSAGE_OVERHEAD_CHARS
    return math.ceil(chars / CHARS_PER_TOKEN)


def fit_to_window(entry: ModelEntry, prompt: GroundedPrompt) -> GroundedPrompt | None:
    """The prompt with its lowest-ranked passages dropped until the estimate plus the answer
    budget fits `entry`'s window (llama.cpp counts real tokens and fits itself); None when not
    even the best passage fits."""
    if entry.backend == "llama_cpp":
        return prompt
    budget = min(prompt.max_tokens, entry.max_tokens)
    passages = list(prompt.passages)
    while passages:
        candidate = prompt.model_copy(update={"passages": passages})
        if estimate_prompt_tokens(candidate) + budget <= entry.context_window:
            return candidate
        passages = passages[:-1]  # ranked best first
    return None


def estimate_cost_usd(entry: ModelEntry, prompt: GroundedPrompt, prompt_tokens: int) -> float:
    return entry.cost_usd(prompt_tokens, min(prompt.max_tokens, entry.max_tokens))


class Router:
    """The `RoutedGenerator` role: `generate`/`stream` take an optional `RouteRequest`."""

    def __init__(
        self,
        catalog: ModelCatalog,
        *,
        api_keys: dict[str, SecretStr] | None = None,
        embedder: Embedder | None = None,
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 30.0,
        clock: Clock = time.monotonic,
        timer: Clock = time.perf_counter,
        pii: PiiDetector | None = None,
    ) -> None:
        self.catalog = catalog
        self._pii = pii
        self._keys = api_keys or {}
        self._embedder = embedder
        self._timer = timer
        self.breakers = {
            name: CircuitBreaker(
                failures=breaker_failures,
                cooldown_s=breaker_cooldown_s,
                clock=clock,
                on_change=partial(metrics.set_breaker, name),
            )
            for name in catalog.models
        }
        self._generators: dict[tuple[str, float | None], Generator] = {}
        self._lock = threading.Lock()
        self._default_id: str | None = None
        # The measured scores by catalog name (`prefer: measured`); set by the runtime.
        self.scores: Callable[[], Mapping[str, Score]] | None = None

    @property
    def model_id(self) -> str:
        """The pinned id of the model the default policy tries first: what answers a request
        that says nothing (each answer's `route` records the model that really answered)."""
        if self._default_id is None:
            policy = self.catalog.policies[self.catalog.default_policy]
            names = policy.models or [
                e.name for e in self.catalog.models.values() if e.backend != "extractive"
            ]
            self._default_id = (self.pinned_id(names[0]) if names else None) or ROUTER_ID
        return self._default_id

    # Generators ---------------------------------------------------------------------------

    def generator(self, name: str, timeout_s: float | None = None) -> Generator:
        """The adapter for a catalog model, built on first use (one per distinct timeout)."""
        entry = self.catalog.models[name]
        if entry.backend in ("llama_cpp", "extractive"):
            timeout_s = None  # in process: nothing to time out, and one copy of the model
        elif timeout_s is not None:
            timeout_s = math.ceil(timeout_s * 10) / 10  # few distinct clients
        key = (name, timeout_s)
        with self._lock:
            found = self._generators.get(key)
            if found is None:
                if len(self._generators) >= _MAX_CACHED:
                    oldest = next(k for k in self._generators if k[1] is not None)
                    del self._generators[oldest]
                found = build_generator(
                    entry,
                    api_key=self._keys.get(name),
                    embedder=self._embedder,
                    timeout_s=timeout_s,
                )
                self._generators[key] = found
            return found

    def pinned_id(self, name: str) -> str | None:
        """The exact version a model answers as (a local GGUF's is read from its header)."""
        entry = self.catalog.models[name]
        if entry.model:
            return entry.model
        try:
            return self.generator(name).model_id
        except RagError:
            return None

    def close(self) -> None:
        with self._lock:
            generators, self._generators = list(self._generators.values()), {}
        for g in generators:
            close = getattr(g, "close", None)
            if close is not None:
                close()

    # Planning -----------------------------------------------------------------------------

    def check(self, request: RouteRequest | None) -> None:
        """Raise `UnknownModel` for a model or policy the catalog lacks, before any work."""
        if request is None:
            return
        self.policy(request)
        if request.model is not None and request.model not in self.catalog.models:
            raise UnknownModel(self._unknown_models([request.model]))

    def policy(self, request: RouteRequest | None) -> tuple[str, Policy]:
        """The policy a request is under, with its name ('inline' for an inline one), its
        sensitivity raised to the data's (`RouteRequest.sensitivity`)."""
        name, policy = self._named_policy(request)
        data = request.sensitivity if request is not None else None
        if data is not None and SENSITIVITY_RANK[data] > SENSITIVITY_RANK[policy.sensitivity]:
            policy = policy.model_copy(update={"sensitivity": data})
        return name, policy

    def _named_policy(self, request: RouteRequest | None) -> tuple[str, Policy]:
        policy = request.policy if request is not None else None
        if policy is None:
            name = self.catalog.default_policy
            return name, self.catalog.policies[name]
        if isinstance(policy, str):
            if policy not in self.catalog.policies:
                raise UnknownModel(
                    f"unknown policy {policy!r}; the policies are: "
                    + ", ".join(sorted(self.catalog.policies))
                )
            return policy, self.catalog.policies[policy]
        unknown = [m for m in policy.models or [] if m not in self.catalog.models]
        if unknown:
            raise UnknownModel(self._unknown_models(unknown))
        problem = self.catalog.verifier_problem(policy.verifier)
        if problem:
            raise UnknownModel(problem)
        return "inline", policy

    def _unknown_models(self, names: list[str]) -> str:
        return f"unknown model {', '.join(map(repr, names))}; the models are: " + ", ".join(
            self.catalog.models
        )

    def _ineligible(
        self, entry: ModelEntry, policy: Policy, prompt: GroundedPrompt, tokens: int
    ) -> str | None:
        """Why `entry` may not answer under `policy`, or None."""
        if _needs_masking(entry, policy) and policy.pii != "mask":
            where = "self-hosted" if entry.is_self_hosted else "not self-hosted"
            return (
                f"may not see {policy.sensitivity} data ({where}, "
                f"max_sensitivity {entry.sensitivity_ceiling})"
            )
        if policy.quality and QUALITY_RANK[entry.quality] < QUALITY_RANK[policy.quality]:
            return f"quality {entry.quality} is below {policy.quality}"
        if policy.max_cost_usd is not None:
            cost = estimate_cost_usd(entry, prompt, tokens)
            if cost > policy.max_cost_usd:
                return f"estimated cost ${cost:.6f} is over max_cost_usd {policy.max_cost_usd}"
        if (
            policy.max_latency_ms is not None
            and entry.latency_ms is not None
            and entry.latency_ms > policy.max_latency_ms
        ):
            return f"latency hint {entry.latency_ms:.0f} ms is over max_latency_ms"
        if fit_to_window(entry, prompt) is None:
            budget = min(prompt.max_tokens, entry.max_tokens)
            return (
                f"not even the best passage fits its {entry.context_window}-token window "
                f"with {budget} tokens reserved for the answer"
            )
        return None

    def _order(
        self, entries: list[ModelEntry], policy: Policy, prompt: GroundedPrompt, tokens: int
    ) -> list[ModelEntry]:
        if policy.prefer == "cost":
            return sorted(entries, key=lambda e: estimate_cost_usd(e, prompt, tokens))
        if policy.prefer == "latency":
            return sorted(entries, key=lambda e: e.latency_ms if e.latency_ms else math.inf)
        if policy.prefer == "quality":
            return sorted(entries, key=lambda e: -QUALITY_RANK[e.quality])
        if policy.prefer == "measured":
            return _by_measure(entries, self.measured())
        return entries

    def measured(self) -> Mapping[str, Score]:
        """The scoreboard's scores; none (catalog order) when it cannot be read: routing
        never fails for want of a score."""
        if self.scores is None:
            return {}
        try:
            return self.scores()
        except Exception:
            log.exception("the model scoreboard could not be read; ordering as unscored")
            return {}

    def plan(self, prompt: GroundedPrompt, request: RouteRequest | None = None) -> Plan:
        """The ordered chain for this prompt; raises `UnknownModel` / `PolicyUnsatisfiable`."""
        request = request or RouteRequest()
        policy_name, policy = self.policy(request)
        models = self.catalog.models
        tokens = estimate_prompt_tokens(prompt)
        if request.model is not None:
            if request.model not in models:
                raise UnknownModel(self._unknown_models([request.model]))
            named = [models[request.model]]
            label = f"model {request.model!r} named by the request"
            policy_label = "model" if request.policy is None else policy_name
        elif policy.models:
            named = [models[m] for m in policy.models]
            label = f"policy {policy_name!r}: first eligible of its models"
            policy_label = policy_name
        else:
            named = [e for e in models.values() if e.backend != "extractive"]
            label = f"policy {policy_name!r}: first eligible in catalog order"
            policy_label = policy_name
        if policy.prefer != "order" and request.model is None:
            label = f"policy {policy_name!r}: eligible model with the best {policy.prefer}"
            if policy.prefer == "measured":
                label += " quality (upper confidence bound)"
        skipped: dict[str, str] = {}
        eligible: list[ModelEntry] = []
        for entry in named:
            why = self._ineligible(entry, policy, prompt, tokens)
            if why is None:
                eligible.append(entry)
            else:
                skipped[entry.name] = why
        if not eligible:
            reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
            raise PolicyUnsatisfiable(
                f"no configured model satisfies policy {policy_name!r} "
                f"({_describe(policy)}): {reasons or 'the catalog has no model'}"
            )
        scores = self.measured() if policy.prefer == "measured" else None
        links = [
            Link(e, label, masked=_needs_masking(e, policy), score=_route_score(scores, e.name))
            for e in self._order(eligible, policy, prompt, tokens)
        ]
        net = self.catalog.extractive_entry
        if net is not None and all(link.entry.name != net.name for link in links):
            links.append(Link(net, "extractive fallback: no model could answer", safety_net=True))
        timeout = policy.max_latency_ms / 1000 if policy.max_latency_ms else None
        return Plan(policy_label, policy, links, timeout, tokens, skipped)

    # Generating ---------------------------------------------------------------------------

    def generate(self, prompt: GroundedPrompt, request: RouteRequest | None = None) -> Generation:
        return collect(self.stream(prompt, request))

    def stream(self, prompt: GroundedPrompt, request: RouteRequest | None = None) -> EventStream:
        return self.run(self.plan(prompt, request), prompt)

    def run(self, plan: Plan, prompt: GroundedPrompt) -> EventStream:
        """Walk the plan's chain; see the module docstring for the fallback rules."""
        start = self._timer()
        fallbacks: list[Attempt] = []
        masker: Masker | None = None  # one per request: the same placeholders on every retry
        for index, link in enumerate(plan.links):
            name = link.entry.name
            spent_ms = (self._timer() - start) * 1000
            budget = plan.policy.max_latency_ms
            if budget is not None and spent_ms > budget and not link.safety_net:
                fallbacks.append(_skip(name, "latency_budget", "the latency budget is spent"))
                continue
            breaker = self.breakers[name]
            refused = breaker.acquire()
            if refused is not None:
                fallbacks.append(_skip(name, *refused))
                continue
            events: EventStream | None = None
            fitted = fit_to_window(link.entry, prompt) or prompt
            if link.masked:
                masker = masker or Masker(self._pii or default_detector())
                try:
                    fitted = masker.mask_prompt(fitted)
                except Exception as exc:  # never send it in clear instead
                    breaker.release()
                    fallbacks.append(_skip(name, "pii_masking_failed", type(exc).__name__))
                    continue
                metrics.observe_masked(masker.counts_unobserved())
            try:
                events = self.generator(name, plan.timeout_s).stream(fitted)
                if link.masked:
                    assert masker is not None
                    events = masker.restore_stream(events)
                first = next(events)
            except StopIteration:
                breaker.failure()
                fallbacks.append(_failed(name, GenerationError("the stream ended empty")))
                continue
            except RagError as exc:
                self._record_failure(breaker, exc)
                fallbacks.append(_failed(name, exc))
                continue
            except BaseException:
                breaker.release()
                raise
            ttft_ms = (self._timer() - start) * 1000
            if link.safety_net or index == 0:
                reason = link.reason
            else:
                reason = (
                    f"{link.reason}, after {', '.join(a.model for a in fallbacks)} did not answer"
                )
            try:
                event: TextDelta | Done = first
                while True:
                    if isinstance(event, Done):
                        breaker.success()
                        masked = masker.counts if masker is not None else None
                        yield Done(
                            self._routed(
                                event.generation,
                                link,
                                plan,
                                reason,
                                fallbacks,
                                ttft_ms,
                                start,
                                masked,
                            )
                        )
                        return
                    yield event
                    event = next(events)
            except StopIteration:
                breaker.failure()
                raise GenerationError(
                    f"{name}: the stream ended without a final generation"
                ) from None
            except RagError as exc:
                self._record_failure(breaker, exc)
                raise
            except BaseException:  # GeneratorExit: the consumer went away
                breaker.release()
                raise
            finally:
                events.close()
        tried = ", ".join(f"{a.model} ({a.error}: {a.message})" for a in fallbacks)
        net = "" if self.catalog.extractive_entry else "; the extractive fallback is disabled"
        raise AllModelsFailed(
            f"every model failed: {tried}{net}",
            attempts=[(a.model, a.error) for a in fallbacks],
        )

    @staticmethod
    def _record_failure(breaker: CircuitBreaker, exc: RagError) -> None:
        if isinstance(exc, InvalidInput):
            breaker.release()  # the request does not fit this model; the model is fine
        else:
            breaker.failure(exc.retry_after_s if isinstance(exc, BackendError) else None)

    def _routed(
        self,
        generation: Generation,
        link: Link,
        plan: Plan,
        reason: str,
        fallbacks: list[Attempt],
        ttft_ms: float,
        start: float,
        masked: dict[str, int] | None = None,
    ) -> Generation:
        route = Route(
            model=link.entry.name,
            reason=reason,
            policy=plan.policy_name,
            fallbacks=list(fallbacks),
            degraded=link.safety_net,
            cost_usd=link.entry.cost_usd(generation.prompt_tokens, generation.completion_tokens),
            ttft_ms=ttft_ms,
            latency_ms=(self._timer() - start) * 1000,
            masked=masked or None,
            score=link.score,
        )
        return generation.model_copy(update={"route": route})

    # Health and listing -------------------------------------------------------------------

    def ping(self) -> None:
        """Ready when a model of the default chain answers (the extractive alone is degraded)."""
        policy = self.catalog.policies[self.catalog.default_policy]
        names = policy.models or [
            e.name for e in self.catalog.models.values() if e.backend != "extractive"
        ]
        problems: list[tuple[str, str]] = []
        for name in names:
            try:
                self.generator(name).ping()
                return
            except RagError as exc:
                problems.append((name, exc.message))
        if not names:
            return
        raise AllModelsFailed(
            "no model of the default policy is reachable: "
            + "; ".join(f"{n}: {m}" for n, m in problems),
            attempts=problems,
        )

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for name, e in self.catalog.models.items():
            out.append(
                {
                    "name": name,
                    "backend": e.backend,
                    "model": self.pinned_id(name),
                    "self_hosted": e.is_self_hosted,
                    "max_sensitivity": e.sensitivity_ceiling,
                    "quality": e.quality,
                    "context_window": e.context_window,
                    "input_usd_per_mtok": e.input_usd_per_mtok,
                    "output_usd_per_mtok": e.output_usd_per_mtok,
                    "latency_ms": e.latency_ms,
                    "breaker": self.breakers[name].snapshot(),
                }
            )
        return out


def _describe(policy: Policy) -> str:
    parts = [f"sensitivity {policy.sensitivity}"]
    for key in ("max_cost_usd", "max_latency_ms", "quality", "models"):
        value = getattr(policy, key)
        if value is not None:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _skip(model: str, code: str, message: str) -> Attempt:
    return Attempt(model=model, error=code, message=message, retryable=True, sent=False)


def _failed(model: str, exc: RagError) -> Attempt:
    retryable = exc.retryable if isinstance(exc, BackendError) else False
    return Attempt(model=model, error=exc.code, message=exc.message, retryable=retryable, sent=True)


def _by_measure(entries: list[ModelEntry], scores: Mapping[str, Score]) -> list[ModelEntry]:
    """Scored models by upper bound (then estimate), then unscored ones in their order."""
    scored = [e for e in entries if e.name in scores and scores[e.name].upper is not None]
    scored.sort(key=lambda e: (-(scores[e.name].upper or 0.0), -(scores[e.name].quality or 0.0)))
    return scored + [e for e in entries if e not in scored]


def _route_score(scores: Mapping[str, Score] | None, name: str) -> RouteScore | None:
    if scores is None:
        return None
    score = scores.get(name)
    return score.route_score() if score is not None else UNSCORED


def _needs_masking(entry: ModelEntry, policy: Policy) -> bool:
    """Whether the data is more sensitive than `entry` may see."""
    return SENSITIVITY_RANK[policy.sensitivity] > SENSITIVITY_RANK[entry.sensitivity_ceiling]

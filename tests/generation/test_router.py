"""The router with real adapters against the vendor stubs: choosing, budgets, fallback on
429/5xx/timeouts, Retry-After, the circuit breaker (on an injected clock), streaming, and the
catalog's validation. Nothing of ours is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from rag.config import Settings
from rag.errors import (
    AllModelsFailed,
    BackendUnavailable,
    ConfigError,
    PolicyUnsatisfiable,
    UnknownModel,
)
from rag.generation import Done, TextDelta, collect
from rag.generation.breaker import BreakerState, CircuitBreaker
from rag.generation.extractive import MODEL_ID as EXTRACTIVE_ID
from rag.generation.model_catalog import load_catalog, parse_catalog, resolve_secrets
from rag.generation.router import Router, RouteRequest, estimate_prompt_tokens
from rag.models import Generation
from tests.generation.conftest import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, PROMPT
from tests.stubs.server import Reply, StubServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def stubs(
    openai_stub: StubServer, anthropic_stub: StubServer, gemini_stub: StubServer
) -> Iterator[dict[str, StubServer]]:
    found = {"gpt": openai_stub, "claude": anthropic_stub, "gemini": gemini_stub}
    for stub in found.values():
        stub.reset()
    yield found
    for stub in found.values():
        stub.reset()


def closed_models(stubs: dict[str, StubServer], **overrides: Any) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {
        "gpt": {
            "backend": "openai",
            "model": OPENAI_MODEL,
            "base_url": f"{stubs['gpt'].url}/v1",
            "api_key_env": "TEST_OPENAI_KEY",
            "input_usd_per_mtok": 0.15,
            "output_usd_per_mtok": 0.60,
            "timeout_s": 2,
        },
        "claude": {
            "backend": "anthropic",
            "model": ANTHROPIC_MODEL,
            "base_url": stubs["claude"].url,
            "api_key_env": "TEST_ANTHROPIC_KEY",
            "input_usd_per_mtok": 0.80,
            "output_usd_per_mtok": 4.0,
            "quality": "best",
            "timeout_s": 2,
        },
        "gemini": {
            "backend": "gemini",
            "model": GEMINI_MODEL,
            "base_url": stubs["gemini"].url,
            "api_key_env": "TEST_GEMINI_KEY",
            "input_usd_per_mtok": 0.10,
            "output_usd_per_mtok": 0.40,
            "quality": "fast",
            "timeout_s": 2,
        },
    }
    for name, change in overrides.items():
        models[name] = models[name] | change
    return models


def make_router(
    models: dict[str, dict[str, Any]],
    *,
    clock: FakeClock | None = None,
    failures: int = 3,
    **catalog: Any,
) -> Router:
    parsed = parse_catalog({"models": models, **catalog}, source="test")
    keys = resolve_secrets(parsed, lambda name: SecretStr(f"key-{name}"))
    return Router(
        parsed,
        api_keys=keys,
        breaker_failures=failures,
        breaker_cooldown_s=30,
        clock=clock or FakeClock(),
    )


def generations(stub: StubServer) -> int:
    return sum(1 for r in stub.requests if r.method == "POST")


# Choosing --------------------------------------------------------------------------------


def test_default_policy_takes_the_first_model_and_records_the_route(
    stubs: dict[str, StubServer],
) -> None:
    router = make_router(closed_models(stubs))
    generation = router.generate(PROMPT)
    assert "Rust" in generation.text and generation.model == OPENAI_MODEL
    route = generation.route
    assert route is not None
    assert route.model == "gpt" and route.policy == "default" and not route.degraded
    assert "catalog order" in route.reason and route.fallbacks == []
    assert generation.prompt_tokens > 0 and generation.completion_tokens > 0
    expected = (generation.prompt_tokens * 0.15 + generation.completion_tokens * 0.60) / 1e6
    assert route.cost_usd == pytest.approx(expected)
    assert route.ttft_ms is not None and 0 < route.ttft_ms <= route.latency_ms
    assert generations(stubs["claude"]) == generations(stubs["gemini"]) == 0


def test_a_named_model_answers(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    generation = router.generate(PROMPT, RouteRequest(model="claude"))
    assert generation.model == ANTHROPIC_MODEL
    assert generation.route and generation.route.model == "claude"
    assert "named by the request" in generation.route.reason
    cost = (generation.prompt_tokens * 0.80 + generation.completion_tokens * 4.0) / 1e6
    assert generation.route.cost_usd == pytest.approx(cost)


def test_policy_filters_and_preferences(stubs: dict[str, StubServer]) -> None:
    router = make_router(
        closed_models(stubs),
        policies={
            "cheap": {"prefer": "cost"},
            "best": {"quality": "best"},
            "order": {"models": ["gemini", "gpt"]},
        },
    )
    assert [link.entry.name for link in router.plan(PROMPT, RouteRequest(policy="cheap")).links][
        :3
    ] == ["gemini", "gpt", "claude"]
    plan = router.plan(PROMPT, RouteRequest(policy="best"))
    assert [link.entry.name for link in plan.links] == ["claude", "extractive"]
    assert "quality balanced is below best" in plan.skipped["gpt"]
    plan = router.plan(PROMPT, RouteRequest(policy="order"))
    assert [link.entry.name for link in plan.links] == ["gemini", "gpt", "extractive"]
    inline = RouteRequest(policy={"max_latency_ms": 500}, model=None)  # type: ignore[arg-type]
    assert router.plan(PROMPT, inline).timeout_s == 0.5


def test_cost_budget_uses_the_estimate(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    tokens = estimate_prompt_tokens(PROMPT)
    gpt_cost = (tokens * 0.15 + PROMPT.max_tokens * 0.60) / 1e6
    claude_cost = (tokens * 0.80 + PROMPT.max_tokens * 4.0) / 1e6
    request = RouteRequest(policy={"max_cost_usd": (gpt_cost + claude_cost) / 2})  # type: ignore[arg-type]
    plan = router.plan(PROMPT, request)
    assert [link.entry.name for link in plan.links] == ["gpt", "gemini", "extractive"]
    assert "over max_cost_usd" in plan.skipped["claude"]


def test_unknown_model_or_policy_names_the_allowed_ones(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs), policies={"standard": {}})
    with pytest.raises(UnknownModel, match="gpt, claude, gemini, extractive"):
        router.plan(PROMPT, RouteRequest(model="gpt-5"))
    with pytest.raises(UnknownModel, match="default, standard"):
        router.plan(PROMPT, RouteRequest(policy="fastest"))
    with pytest.raises(UnknownModel, match="'nope'"):
        router.plan(PROMPT, RouteRequest(policy={"models": ["gpt", "nope"]}))  # type: ignore[arg-type]


def test_a_policy_nothing_satisfies_is_refused_with_reasons(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs), policies={"secret": {"sensitivity": "private"}})
    with pytest.raises(PolicyUnsatisfiable) as caught:
        router.plan(PROMPT, RouteRequest(policy="secret"))
    message = caught.value.message
    assert "'secret'" in message and "sensitivity private" in message
    assert all(f"{m}: may not see private data (not self-hosted" in message for m in stubs)
    # Naming a closed model does not get around the policy either.
    with pytest.raises(PolicyUnsatisfiable):
        router.plan(PROMPT, RouteRequest(model="gpt", policy="secret"))
    with pytest.raises(PolicyUnsatisfiable, match="max_cost_usd"):
        router.plan(PROMPT, RouteRequest(policy={"max_cost_usd": 1e-9}))  # type: ignore[arg-type]
    # The extractive is self-hosted and may be named on purpose.
    named = router.generate(PROMPT, RouteRequest(model="extractive", policy="secret"))
    assert named.model == EXTRACTIVE_ID and named.route and not named.route.degraded


# Falling back ----------------------------------------------------------------------------


def test_429_falls_back_and_retry_after_is_honoured(stubs: dict[str, StubServer]) -> None:
    clock = FakeClock()
    router = make_router(closed_models(stubs), clock=clock)
    stubs["gpt"].reply(Reply("status", status=429, retry_after="7"))
    first = router.generate(PROMPT)
    assert first.route and first.route.model == "claude" and first.model == ANTHROPIC_MODEL
    [attempt] = first.route.fallbacks
    assert (attempt.model, attempt.error, attempt.retryable, attempt.sent) == (
        "gpt",
        "backend_rate_limited",
        True,
        True,
    )
    assert "after gpt did not answer" in first.route.reason

    clock.advance(5)  # still inside the 7 s it asked for: not even sent
    sent = generations(stubs["gpt"])
    second = router.generate(PROMPT)
    assert second.route and second.route.model == "claude"
    assert second.route.fallbacks[0].error == "retry_after" and not second.route.fallbacks[0].sent
    assert generations(stubs["gpt"]) == sent

    clock.advance(2.5)
    third = router.generate(PROMPT)
    assert third.route and third.route.model == "gpt" and third.route.fallbacks == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_fall_back(stubs: dict[str, StubServer], status: int) -> None:
    router = make_router(closed_models(stubs))
    stubs["gpt"].reply(Reply("status", status=status))
    stubs["claude"].reply(Reply("status", status=529, error_type="overloaded_error"))
    generation = router.generate(PROMPT)
    assert generation.route and generation.route.model == "gemini"
    assert [(a.model, a.error) for a in generation.route.fallbacks] == [
        ("gpt", "backend_unavailable"),
        ("claude", "backend_unavailable"),
    ]


def test_a_timeout_falls_back(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs, gpt={"timeout_s": 0.3}))
    stubs["gpt"].reply(Reply("hang"))
    generation = router.generate(PROMPT)
    assert generation.route and generation.route.model == "claude"
    assert generation.route.fallbacks[0].error == "backend_timeout"
    assert generation.route.latency_ms >= 300


def test_a_client_error_falls_back_but_is_recorded_as_not_retryable(
    stubs: dict[str, StubServer],
) -> None:
    router = make_router(closed_models(stubs))
    stubs["gpt"].reply(Reply("status", status=401))
    generation = router.generate(PROMPT)
    assert generation.route and generation.route.model == "claude"
    attempt = generation.route.fallbacks[0]
    assert attempt.error == "backend_error" and not attempt.retryable and "401" in attempt.message


def test_every_model_down_is_answered_by_the_extractive(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    for stub in stubs.values():
        stub.reply(Reply("status", status=503))
    generation = router.generate(PROMPT)
    assert generation.model == EXTRACTIVE_ID and "Rust for memory safety [1]" in generation.text
    route = generation.route
    assert route and route.degraded and route.model == "extractive" and route.cost_usd == 0
    assert [a.model for a in route.fallbacks] == ["gpt", "claude", "gemini"]


def test_every_model_down_without_the_extractive_lists_what_was_tried(
    stubs: dict[str, StubServer],
) -> None:
    router = make_router(closed_models(stubs), extractive=False)
    stubs["gpt"].reply(Reply("status", status=429, retry_after="3"))
    stubs["claude"].reply(Reply("status", status=500))
    stubs["gemini"].reply(Reply("status", status=400))
    with pytest.raises(AllModelsFailed) as caught:
        router.generate(PROMPT)
    assert caught.value.attempts == [
        ("gpt", "backend_rate_limited"),
        ("claude", "backend_unavailable"),
        ("gemini", "backend_error"),
    ]
    assert "extractive fallback is disabled" in caught.value.message


# Circuit breaker ---------------------------------------------------------------------------


def test_the_breaker_opens_after_n_failures_and_closes_after_a_good_probe(
    stubs: dict[str, StubServer],
) -> None:
    clock = FakeClock()
    router = make_router(closed_models(stubs), clock=clock, failures=2)
    breaker = router.breakers["gpt"]
    for _ in range(2):
        stubs["gpt"].reply(Reply("status", status=500))
        assert (router.generate(PROMPT).route or pytest.fail()).model == "claude"
    assert breaker.state is BreakerState.OPEN
    sent = generations(stubs["gpt"])
    clock.advance(29)
    skipped = router.generate(PROMPT).route
    assert skipped and skipped.fallbacks[0].error == "circuit_open"
    assert generations(stubs["gpt"]) == sent  # an open breaker sends nothing

    clock.advance(2)  # the cooldown has passed: one probe; it fails, so open again
    stubs["gpt"].reply(Reply("status", status=502))
    assert (router.generate(PROMPT).route or pytest.fail()).model == "claude"
    assert breaker.state is BreakerState.OPEN and generations(stubs["gpt"]) == sent + 1

    clock.advance(31)  # the next probe succeeds: closed
    probed = router.generate(PROMPT)
    assert probed.route and probed.route.model == "gpt"
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive == 0
    assert router.describe()[0]["breaker"]["state"] == "closed"


def test_a_half_open_breaker_lets_one_probe_through() -> None:

    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, cooldown_s=10, clock=clock)
    breaker.failure()
    assert breaker.acquire() == ("circuit_open", "circuit open for another 10.0 s")
    clock.advance(10)
    assert breaker.acquire() is None  # the probe
    assert breaker.acquire() is not None  # others wait for it
    breaker.release()  # the probe was cancelled: the next request probes
    assert breaker.acquire() is None
    breaker.success()
    assert breaker.acquire() is None and breaker.acquire() is None


# Streaming -------------------------------------------------------------------------------


def test_a_stream_falls_back_before_its_first_token(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    stubs["gpt"].reply(Reply("status", status=503))
    events = list(router.stream(PROMPT))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, Done) and done.generation.route
    assert "".join(deltas) == done.generation.text and len(deltas) > 1
    assert done.generation.route.model == "claude"
    assert done.generation.route.ttft_ms is not None


def test_an_error_after_the_first_token_ends_the_stream(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    stubs["gpt"].reply(Reply("stream_error", error_type="server_error"))
    seen: list[Any] = []
    with pytest.raises(BackendUnavailable):
        for event in router.stream(PROMPT):
            seen.append(event)
    assert len(seen) == 1 and isinstance(seen[0], TextDelta)
    assert generations(stubs["claude"]) == 0  # no fallback once text went out
    assert router.breakers["gpt"].consecutive == 1


def test_closing_a_stream_closes_the_upstream_response(stubs: dict[str, StubServer]) -> None:
    router = make_router(closed_models(stubs))
    stubs["gpt"].reply(Reply("slow"))
    events = router.stream(PROMPT)
    assert isinstance(next(events), TextDelta)
    assert isinstance(next(events), TextDelta)
    events.close()
    assert stubs["gpt"].disconnected.wait(5)
    assert router.breakers["gpt"].consecutive == 0  # a cancelled call is not a failure
    done = collect(router.stream(PROMPT))
    assert isinstance(done, Generation) and done.route and done.route.model == "gpt"


# Catalog ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "models.gpt: a openai model needs `model`"),
        ({"input_usd_per_mtok": -1}, "models.gpt.input_usd_per_mtok"),
        ({"model": "gpt-4o-latest"}, "models.gpt: model 'gpt-4o-latest' is a floating alias"),
        ({"self_hosted": True}, "models.gpt: a openai model runs at openai"),
        ({"api_key_env": None}, "models.gpt: a openai model needs `api_key_env`"),
        ({"backend": "mistral"}, "models.gpt.backend"),
        ({"temprature": 0.1}, "models.gpt.temprature: Extra inputs are not permitted"),
        ({"max_sensitivity": "private"}, "only a self_hosted model may see private data"),
    ],
)
def test_an_invalid_entry_is_named(
    stubs: dict[str, StubServer], change: dict[str, Any], message: str
) -> None:
    models = closed_models(stubs, gpt=change)
    with pytest.raises(ConfigError) as caught:
        parse_catalog({"models": models}, source="catalog.toml")
    assert message in caught.value.message and "catalog.toml" in caught.value.message
    assert "\n" not in caught.value.message


def test_invalid_policies_and_self_hosting_are_named() -> None:
    server = {"backend": "openai_compat", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(ConfigError, match="models.vllm: an openai_compat model must say"):
        parse_catalog({"models": {"vllm": server}})
    models = {"vllm": server | {"self_hosted": True}}
    with pytest.raises(ConfigError, match=r"policies.fast: unknown models \['gpt'\]"):
        parse_catalog({"models": models, "policies": {"fast": {"models": ["gpt"]}}})
    with pytest.raises(ConfigError, match="default_policy 'nope' is not among policies"):
        parse_catalog({"models": models, "default_policy": "nope"})
    with pytest.raises(ConfigError, match=r"policies.p.sensitivity"):
        parse_catalog({"models": models, "policies": {"p": {"sensitivity": "secret"}}})


def test_a_catalog_file_and_missing_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        'default_policy = "standard"\n'
        "[models.local]\n"
        'backend = "llama_cpp"\n'
        "[models.gpt]\n"
        'backend = "openai"\n'
        'model = "gpt-4o-mini-2024-07-18"\n'
        'api_key_env = "RAG_TEST_MISSING_KEY"\n'
        "[policies.standard]\n"
        'models = ["gpt", "local"]\n'
    )
    settings = Settings(generator={"catalog_file": path})  # type: ignore[arg-type]
    catalog = load_catalog(settings)
    assert list(catalog.models) == ["local", "gpt", "extractive"]
    assert catalog.default_policy == "standard"
    monkeypatch.delenv("RAG_TEST_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="RAG_TEST_MISSING_KEY \\(model 'gpt'\\)"):
        resolve_secrets(catalog, settings.env_secret)
    monkeypatch.setenv("RAG_TEST_MISSING_KEY", "sk-x")
    assert resolve_secrets(catalog, settings.env_secret)["gpt"].get_secret_value() == "sk-x"

    path.write_text("[models.gpt\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_catalog(settings)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_catalog(Settings(generator={"catalog_file": tmp_path / "none.toml"}))  # type: ignore[arg-type]


def test_a_configured_local_model_answers_then_the_extractive(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    generator = {"max_tokens": 64, "model_id": "pinned@1", "model_path": gguf}
    settings = Settings(generator=generator)  # type: ignore[arg-type]
    catalog = load_catalog(settings)
    names = list(catalog.models)  # the installed packaged instruct models in between: see
    assert names[0] == "local" and names[-1] == "extractive"  # test_packaged.py
    local = catalog.models["local"]
    assert local.backend == "llama_cpp" and local.max_tokens == 64 and local.is_self_hosted
    assert catalog.default_policy == "default"
    router = Router(catalog)
    assert router.pinned_id("local") == "pinned@1"
    assert [link.entry.name for link in router.plan(PROMPT).links] == ["local", "extractive"]


def test_passages_are_dropped_lowest_ranked_first_to_fit_an_api_window() -> None:
    from rag.generation.model_catalog import ModelEntry
    from rag.generation.router import estimate_prompt_tokens, fit_to_window
    from rag.models import GroundedPrompt, Passage

    prompt = GroundedPrompt(
        question="What is in the passages?",
        passages=[Passage(marker=i, text="word " * 300) for i in (1, 2, 3)],
        max_tokens=64,
    )
    whole = estimate_prompt_tokens(prompt)
    small = ModelEntry(
        name="small", backend="openai_compat", model="m", base_url="http://127.0.0.1:1/v1",
        self_hosted=True, context_window=whole, max_tokens=64,
    )  # fmt: skip
    fitted = fit_to_window(small, prompt)
    assert fitted is not None and [p.marker for p in fitted.passages] == [1, 2]
    assert estimate_prompt_tokens(fitted) + 64 <= small.context_window
    tiny = small.model_copy(update={"context_window": 300})
    assert fit_to_window(tiny, prompt) is None  # not even the best passage fits

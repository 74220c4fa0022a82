"""Property: whatever the catalog, policy, verifier and failures, a private request never reaches
a model that is not self-hosted, neither to answer it nor to verify the answer. Real adapters
send real requests to stub servers; "reached" is what the closed vendors' stubs received."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import AllModelsFailed, GenerationError, PolicyUnsatisfiable
from rag.generation import Done, collect
from rag.generation.model_catalog import parse_catalog, resolve_secrets
from rag.generation.router import Router, RouteRequest
from rag.verification.check import check
from rag.verification.deterministic import DeterministicVerifier
from rag.verification.select import Verifiers
from tests.generation.conftest import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, PROMPT
from tests.passages import as_hits
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import Reply, StubServer

SELF_HOSTED = {"vllm": "llama-3.1-8b-instruct", "ollama": "qwen2.5:7b-instruct"}
CLOSED = ["gpt", "claude", "gemini", "cheap_api"]
REPLIES = {
    "ok": Reply(),
    "429": Reply("status", status=429, retry_after="5"),
    "500": Reply("status", status=500),
    "401": Reply("status", status=401),
    "malformed": Reply("malformed"),
}


@pytest.fixture(scope="module")
def deterministic() -> DeterministicVerifier:
    return DeterministicVerifier(SentenceTransformerEmbedder())


@pytest.fixture(scope="module")
def self_hosted_stubs() -> Iterator[dict[str, StubServer]]:
    stubs = {name: StubServer(OpenAIVendor(), model=m).start() for name, m in SELF_HOSTED.items()}
    yield stubs
    for stub in stubs.values():
        stub.stop()


def entries(
    local: dict[str, StubServer], closed: dict[str, StubServer]
) -> dict[str, dict[str, Any]]:
    key = {"api_key_env": "TEST_KEY", "timeout_s": 2}
    found: dict[str, dict[str, Any]] = {
        name: {
            "backend": "openai_compat",
            "model": SELF_HOSTED[name],
            "base_url": f"{stub.url}/v1",
            "self_hosted": True,
        }
        for name, stub in local.items()
    }
    found["gpt"] = {
        "backend": "openai",
        "model": OPENAI_MODEL,
        "base_url": f"{closed['gpt'].url}/v1",
    }
    found["claude"] = {
        "backend": "anthropic",
        "model": ANTHROPIC_MODEL,
        "base_url": closed["claude"].url,
    }
    found["gemini"] = {"backend": "gemini", "model": GEMINI_MODEL, "base_url": closed["gemini"].url}
    # An OpenAI-compatible server run by someone else: not self-hosted, yet same protocol.
    found["cheap_api"] = {
        "backend": "openai_compat",
        "model": OPENAI_MODEL,
        "base_url": f"{closed['gpt'].url}/v1",
        "self_hosted": False,
    }
    for name in CLOSED:
        found[name] |= key
    return found


scenario = st.fixed_dictionaries(
    {
        "models": st.lists(
            st.sampled_from([*SELF_HOSTED, *CLOSED]), min_size=1, max_size=6, unique=True
        ),
        "failures": st.dictionaries(
            st.sampled_from(list(SELF_HOSTED)),
            st.lists(st.sampled_from(list(REPLIES)), max_size=3),
        ),
        "extractive": st.booleans(),
        "order": st.none() | st.lists(st.sampled_from([*SELF_HOSTED, *CLOSED]), min_size=1),
        "named": st.none() | st.sampled_from([*SELF_HOSTED, *CLOSED]),
        "max_cost_usd": st.none() | st.floats(0, 0.01),
        "stream": st.booleans(),
        "requests": st.integers(1, 3),
        "verifier": st.sampled_from(["deterministic", "self", *SELF_HOSTED, *CLOSED]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario)
def test_private_requests_never_reach_a_model_that_is_not_self_hosted(
    case: dict[str, Any],
    self_hosted_stubs: dict[str, StubServer],
    openai_stub: StubServer,
    anthropic_stub: StubServer,
    gemini_stub: StubServer,
    deterministic: DeterministicVerifier,
) -> None:
    closed = {"gpt": openai_stub, "claude": anthropic_stub, "gemini": gemini_stub}
    for stub in [*self_hosted_stubs.values(), *closed.values()]:
        stub.reset()
    every = entries(self_hosted_stubs, closed)
    models = {name: every[name] for name in case["models"]}
    order = [m for m in case["order"] or [] if m in models] or None
    policy: dict[str, Any] = {"sensitivity": "private", "max_cost_usd": case["max_cost_usd"]}
    if order:
        policy["models"] = order
    if case["verifier"] in ("deterministic", "self") or case["verifier"] in models:
        policy["verifier"] = case["verifier"]
    catalog = parse_catalog(
        {
            "models": models,
            "policies": {"secret": policy},
            "default_policy": "secret",
            "extractive": case["extractive"],
        }
    )
    router = Router(catalog, api_keys=resolve_secrets(catalog, lambda _: SecretStr("k")))
    verifiers = Verifiers(deterministic, router=router, timeout_s=2)
    for name, replies in case["failures"].items():
        if name in models:
            self_hosted_stubs[name].reply(*(REPLIES[r] for r in replies))
    named = case["named"] if case["named"] in models else None
    for _ in range(case["requests"]):
        request = RouteRequest(model=named)
        try:
            if case["stream"]:
                events = list(router.stream(PROMPT, request))
                assert isinstance(events[-1], Done)
                generation = events[-1].generation
            else:
                generation = collect(router.stream(PROMPT, request))
        except (PolicyUnsatisfiable, AllModelsFailed):
            continue
        except GenerationError:  # a stream that broke after its first token: no fallback then
            continue
        assert generation.route is not None
        assert catalog.models[generation.route.model].is_self_hosted
        choice = verifiers.choose(request, generation.route)
        check(generation.text, as_hits(PROMPT.passages), choice.verifier, PROMPT.question)
    for name, stub in closed.items():
        assert stub.requests == [], f"{name} saw a private request"

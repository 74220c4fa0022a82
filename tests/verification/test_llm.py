"""The LLM verifier through real adapters against OpenAI-compatible stubs: JSON labels parsed,
malformed replies, errors and timeouts fall back to the deterministic verifier, and a private
request is never verified by a closed API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from rag.generation.model_catalog import parse_catalog, resolve_secrets
from rag.generation.router import Router, RouteRequest
from rag.models import ClaimLabel, Route
from rag.verification.check import check
from rag.verification.deterministic import DeterministicVerifier
from rag.verification.llm import LlmVerifier
from rag.verification.select import Verifiers
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import Reply, StubServer
from tests.verification.conftest import FLEET_QUESTION, HITS

LOCAL_MODEL = "qwen2.5-7b-instruct"
CLOSED_MODEL = "gpt-4o-mini-2024-07-18"
ANSWER = "The fleet controller is written in Rust. It was created by Google engineers in 2015."


def verdict(*entries: tuple[int, str, list[int]]) -> str:
    claims = [{"claim": n, "label": label, "evidence": ids} for n, label, ids in entries]
    return json.dumps({"claims": claims})


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, StubServer]]:
    found = {
        "vllm": StubServer(OpenAIVendor(), model=LOCAL_MODEL).start(),
        "gpt": StubServer(OpenAIVendor(), model=CLOSED_MODEL).start(),
    }
    yield found
    for stub in found.values():
        stub.stop()


@pytest.fixture
def router(stubs: dict[str, StubServer]) -> Iterator[Router]:
    for stub in stubs.values():
        stub.reset()
    models: dict[str, Any] = {
        "vllm": {
            "backend": "openai_compat",
            "model": LOCAL_MODEL,
            "base_url": f"{stubs['vllm'].url}/v1",
            "self_hosted": True,
            "timeout_s": 2,
        },
        "gpt": {
            "backend": "openai",
            "model": CLOSED_MODEL,
            "base_url": f"{stubs['gpt'].url}/v1",
            "api_key_env": "TEST_KEY",
            "timeout_s": 2,
        },
    }
    policies = {
        "checked": {"models": ["vllm"], "verifier": "vllm"},
        "by_self": {"models": ["vllm"], "verifier": "self"},
        "by_gpt": {"models": ["vllm"], "verifier": "gpt"},
        "secret": {"sensitivity": "private", "models": ["vllm"], "verifier": "gpt"},
    }
    catalog = parse_catalog({"models": models, "policies": policies})
    found = Router(catalog, api_keys=resolve_secrets(catalog, lambda _: SecretStr("k")))
    yield found
    found.close()


@pytest.fixture
def verifiers(router: Router, verifier: DeterministicVerifier) -> Verifiers:
    return Verifiers(verifier, router=router, timeout_s=2)


def llm(verifiers: Verifiers, policy: str) -> LlmVerifier:
    choice = verifiers.choose(RouteRequest(policy=policy), None)
    assert isinstance(choice.verifier, LlmVerifier), choice
    return choice.verifier


def test_labels_and_evidence_ids_are_parsed(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    # HITS are [1] Eiffel (S1, S2), [2] backups (S3, S4), [3] fleet (S5, S6).
    stubs["vllm"].reply(Reply(text=verdict((1, "SUPPORTED", [5]), (2, "NOT_FOUND", []))))
    result = check(ANSWER, HITS, llm(verifiers, "checked"), FLEET_QUESTION)

    assert result.verifier == "llm:vllm"
    assert result.fallback is None
    assert [c.label for c in result.claims] == [ClaimLabel.SUPPORTED, ClaimLabel.NOT_FOUND]
    assert result.answer == "The fleet controller is written in Rust."
    assert [c.document_id for c in result.citations] == ["doc-1"]
    assert result.claims[0].evidence[0].text.startswith("The fleet controller is written in Rust")
    prompt = stubs["vllm"].requests[-1].body["messages"][1]["content"]
    assert "(S5) The fleet controller is written in Rust for memory safety." in prompt
    assert "1. The fleet controller is written in Rust." in prompt


def test_a_contradiction_the_model_finds_is_dropped(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    stubs["vllm"].reply(Reply(text="Sure! " + verdict((1, "CONTRADICTED", [5]))))
    result = check("The fleet controller is written in Go.", HITS, llm(verifiers, "checked"))

    assert not result.answerable
    assert result.claims[0].label is ClaimLabel.CONTRADICTED


def test_a_number_the_passage_contradicts_stays_contradicted_whatever_the_model_says(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    # HITS[0] (S1, S2) says the tower was completed in 1889; the model calls 1887 supported.
    stubs["vllm"].reply(Reply(text=verdict((1, "SUPPORTED", [1]))))
    answer = "The Eiffel Tower was completed in 1887 for the World's Fair in Paris."
    result = check(answer, HITS, llm(verifiers, "checked"))

    assert result.verifier == "llm:vllm" and result.fallback is None
    assert result.claims[0].label is ClaimLabel.CONTRADICTED
    assert not result.answerable


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="The claims look fine to me."),
        Reply(text='{"claims": [{"claim": 1, "lab'),
        Reply(text='{"verdict": "ok"}'),
        Reply(text=verdict((7, "SUPPORTED", [5]), (1, "PROBABLY", [5]))),
        Reply("status", status=500),
        Reply("malformed"),
        Reply("hang"),
    ],
    ids=["prose", "truncated", "no-claims", "garbage", "500", "broken-json", "timeout"],
)
def test_a_bad_verifier_falls_back_to_the_deterministic_one(
    stubs: dict[str, StubServer], verifiers: Verifiers, reply: Reply
) -> None:
    stubs["vllm"].reply(reply)
    result = check(ANSWER, HITS, llm(verifiers, "checked"), FLEET_QUESTION)

    assert result.verifier.startswith("deterministic@")
    assert result.fallback is not None and result.fallback.startswith("llm:vllm: ")
    assert result.answer == "The fleet controller is written in Rust."
    assert [c.label for c in result.claims] == [ClaimLabel.SUPPORTED, ClaimLabel.NOT_FOUND]


def test_a_reply_cut_short_counts_for_the_entries_it_completed(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    stubs["vllm"].reply(
        Reply(text='{"claims": [{"claim": 1, "label": "SUPPORTED", "evidence": [5, 6, 1')
    )
    result = check(ANSWER, HITS, llm(verifiers, "checked"), FLEET_QUESTION)

    assert result.verifier == "llm:vllm"
    assert result.claims[0].label is ClaimLabel.SUPPORTED
    assert len(result.claims[0].evidence) == 3


def test_a_claim_the_model_leaves_out_is_judged_deterministically(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    stubs["vllm"].reply(Reply(text=verdict((2, "SUPPORTED", [99]))))
    result = check(ANSWER, HITS, llm(verifiers, "checked"), FLEET_QUESTION)

    # Claim 1 falls to the deterministic verifier; claim 2, supported with no valid evidence
    # id, rests on the deterministic verifier's nearest window.
    assert [c.label for c in result.claims] == [ClaimLabel.SUPPORTED, ClaimLabel.SUPPORTED]
    assert result.claims[1].evidence


def test_self_verifies_with_the_model_that_answered(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    answered = Route(model="vllm", reason="test", policy="by_self")
    choice = verifiers.choose(RouteRequest(policy="by_self"), answered)
    assert isinstance(choice.verifier, LlmVerifier)
    assert choice.verifier.name == "llm:vllm"

    degraded = answered.model_copy(update={"degraded": True, "model": "extractive"})
    fallback = verifiers.choose(RouteRequest(policy="by_self"), degraded)
    assert fallback.verifier is verifiers.deterministic
    assert fallback.fallback and "extractive" in fallback.fallback


def test_a_private_request_is_never_verified_by_a_closed_api(
    stubs: dict[str, StubServer], verifiers: Verifiers
) -> None:
    choice = verifiers.choose(RouteRequest(policy="secret"), None)

    assert choice.verifier is verifiers.deterministic
    assert choice.fallback and "may not see private data" in choice.fallback
    check(ANSWER, HITS, choice.verifier, FLEET_QUESTION)
    assert stubs["gpt"].requests == []


def test_the_answerer_records_the_verifier_and_labels(
    stubs: dict[str, StubServer], verifiers: Verifiers, router: Router
) -> None:
    from rag.answering import Answerer

    stubs["vllm"].reply(Reply(text=verdict((1, "SUPPORTED", [5]), (2, "NOT_FOUND", []))))
    answerer = Answerer(None, router, verifiers, min_similarity=0.0, max_tokens=64)  # type: ignore[arg-type]
    answer = answerer.verify(FLEET_QUESTION, ANSWER, HITS, route=RouteRequest(policy="checked"))

    assert answer.verification is not None
    assert answer.verification.verifier == "llm:vllm"
    assert answer.verification.requested == "vllm"
    assert [c.label for c in answer.verification.claims] == [
        ClaimLabel.SUPPORTED,
        ClaimLabel.NOT_FOUND,
    ]
    assert [c.text for c in answer.unsupported] == ["It was created by Google engineers in 2015."]
    assert answer.answer == "The fleet controller is written in Rust."
    assert answer.timings.verification_ms > 0


def test_an_unknown_verifier_is_refused_when_the_catalog_loads() -> None:
    from rag.errors import ConfigError

    models = {"vllm": {"backend": "llama_cpp"}}
    with pytest.raises(ConfigError, match="unknown verifier 'nope'"):
        parse_catalog({"models": models, "policies": {"p": {"verifier": "nope"}}})
    with pytest.raises(ConfigError, match="the extractive cannot verify"):
        parse_catalog({"models": models, "policies": {"p": {"verifier": "extractive"}}})


def test_an_inline_policy_naming_an_unknown_verifier_is_refused(router: Router) -> None:
    from rag.errors import UnknownModel
    from rag.generation.model_catalog import Policy

    with pytest.raises(UnknownModel, match="unknown verifier 'claude'"):
        router.check(RouteRequest(policy=Policy(verifier="claude")))
    router.check(RouteRequest(policy=Policy(verifier="vllm")))


def test_without_a_policy_verifier_the_default_runs(verifiers: Verifiers) -> None:
    assert verifiers.choose(None, None).verifier is verifiers.deterministic
    assert verifiers.choose(RouteRequest(policy="default"), None).requested == "deterministic"

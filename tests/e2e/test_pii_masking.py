"""Property: under `pii = "mask"`, personal data seeded in the question (with its thread's
history) and the passages never reaches a closed API in clear, across a failed first attempt and
the retry on a second closed model; what the model echoes as placeholders comes back restored.
The closed APIs are OpenAI's official SDK talking to the wire-protocol stub. Then one test
through the real app: a labelled collection, masking, the route's counts and the metric."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from rag.generation import collect
from rag.generation.model_catalog import parse_catalog, resolve_secrets
from rag.generation.router import Router, RouteRequest
from rag.models import GroundedPrompt, Passage
from rag.privacy.pii import PiiDetector
from rag.privacy.recognizers import luhn_valid
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import Reply, StubServer

GPT = "gpt-4o-mini-2024-07-18"
NAMES = ["Alice Johnson", "Robert Miller", "Maria Garcia", "David Thompson", "Sarah Williams"]
FILLER = "The fleet controller reconciles desired state every 15 minutes on each edge node."


def card(seed: int) -> str:
    rng = random.Random(seed)
    digits = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    check = next(str(d) for d in range(10) if luhn_valid(digits + str(d)))
    return " ".join((digits + check)[i : i + 4] for i in range(0, 16, 4))


def iban(seed: int) -> str:
    bban = f"WEST{seed % 10**14:014d}"
    moved = bban + "GB00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"GB{check:02d}{bban}"


def ssn(seed: int) -> str:
    return f"{seed % 600 + 100:03d}-{seed % 89 + 10:02d}-{seed % 8999 + 1000:04d}"


values = st.fixed_dictionaries(
    {
        "PERSON": st.sampled_from(NAMES),
        "EMAIL": st.from_regex(r"[a-z]{3,8}\.[a-z]{3,8}@corp\.example", fullmatch=True),
        "PHONE": st.integers(1000, 9999).map(lambda n: f"+44 20 7946 {n}"),
        "IBAN": st.integers(10**6, 10**13).map(iban),
        "CARD": st.integers(0, 10**9).map(card),
        "US_SSN": st.integers(0, 10**6).map(ssn),
        "API_KEY": st.from_regex(r"sk-proj-[A-Za-z0-9]{24}", fullmatch=True),
    }
)


@pytest.fixture(scope="module")
def closed() -> Iterator[StubServer]:
    stub = StubServer(OpenAIVendor(), model=GPT).start()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def router(closed: StubServer) -> Router:
    api = {"backend": "openai", "model": GPT, "base_url": f"{closed.url}/v1"}
    api |= {"api_key_env": "K", "timeout_s": 5}
    catalog = parse_catalog(
        {
            "models": {"gpt": api, "gpt_backup": api},
            "policies": {
                "hr": {"sensitivity": "private", "models": ["gpt", "gpt_backup"], "pii": "mask"},
                "default": {"pii": "mask"},
            },
            "default_policy": "hr",
            "extractive": False,
        }
    )
    keys = resolve_secrets(catalog, lambda _: SecretStr("sk-test"))
    return Router(catalog, api_keys=keys, breaker_failures=1000, pii=PiiDetector())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeded=values, layout=st.permutations(range(7)), stream=st.booleans())
def test_no_seeded_value_reaches_the_closed_api(
    seeded: dict[str, str], layout: list[int], stream: bool, closed: StubServer, router: Router
) -> None:
    closed.reset()
    items = list(seeded.items())
    sentences = [
        f"{FILLER} Contact: {items[i][1]}."
        if items[i][0] != "PERSON"
        else f"{items[i][1]} owns it."
        for i in layout
    ]
    history = f"Earlier: who is {seeded['PERSON']}? "
    question = history + f"How do I reach {seeded['PERSON']} or {seeded['EMAIL']}?"
    prompt = GroundedPrompt(
        question=question,
        passages=[
            Passage(marker=i + 1, text=" ".join(sentences[i::3]), title=f"doc {i}")
            for i in range(3)
        ],
        max_tokens=64,
    )
    echo = " ".join(f"<{label}_1>" for label in seeded)
    closed.answer_text = f"Reach {echo} [1]."
    closed.reply(Reply("status", status=500))  # the first model fails: the retry is masked too
    events = router.stream(prompt, RouteRequest())
    generation = collect(events) if not stream else collect(list(events))
    bodies = [json.dumps(r.body) for r in closed.requests if r.method == "POST"]
    assert len(bodies) == 2
    for body in bodies:
        for label, value in seeded.items():
            assert value not in body, (label, value)
            assert value.replace(" ", "") not in body
    assert generation.route is not None and generation.route.model == "gpt_backup"
    assert generation.text == "Reach " + " ".join(seeded.values()) + " [1]."
    masked = generation.route.masked or {}
    assert all(masked.get(label, 0) >= 1 for label in seeded), masked
    # The two attempts were sent the same placeholders.
    assert bodies[0].replace('"stream": true', "") == bodies[1].replace('"stream": true', "")


def test_block_and_allow_leave_the_closed_model_out(router: Router) -> None:
    prompt = GroundedPrompt(
        question="Who is Alice Johnson?", passages=[Passage(marker=1, text="x")]
    )
    for pii in ("block", "allow"):
        policy: Any = {"sensitivity": "private", "models": ["gpt"], "pii": pii}
        with pytest.raises(Exception, match="may not see private data"):
            router.plan(prompt, RouteRequest(policy=policy))
    plan = router.plan(prompt, RouteRequest(sensitivity="private"))
    assert [link.masked for link in plan.links] == [True, True]
    assert (
        router.policy(RouteRequest(sensitivity="private", policy="hr"))[1].sensitivity == "private"
    )

"""Rating answers: POST /v1/query gives an answer_id, POST /v1/feedback rates it, the scores show
on GET /v1/models and a `prefer: measured` policy follows them. The models are wire-protocol
stubs (tests/e2e/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.e2e.conftest import add_collection, key_headers, running
from tests.e2e.test_api import assert_error
from tests.e2e.test_api_models import KEY_ENV, write_catalog
from tests.stubs.server import StubServer

pytestmark = [pytest.mark.anyio]
# The catalog's models, ordered by what was measured of them (an inline policy).
MEASURED = {"models": ["gpt", "vllm"], "prefer": "measured"}
QUESTION = "What language is the fleet controller written in?"


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, stubs: dict[str, StubServer]
) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("feedback")
    catalog = write_catalog(data_dir / "models.toml", stubs)
    settings = make_settings(
        data_dir,
        database_url=f"sqlite:///{data_dir / 'rag.db'}",
        generator={"catalog_file": catalog},
    )
    async with running(settings, {KEY_ENV: "sk-test"}) as application:
        yield application


@pytest.fixture(scope="module")
async def docs(client: httpx.AsyncClient) -> str:
    text = "# Fleet controller\n\nThe fleet controller is written in Rust for memory safety."
    return await add_collection(client, "fleet", [{"source": "fleet.md", "text": text}])


async def _ask(client: httpx.AsyncClient, docs: str, **route: object) -> dict[str, object]:
    body = {"collection": docs, "question": QUESTION, **route}
    response = await client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    assert isinstance(answer["answer_id"], str)
    return answer


async def test_rating_answers_moves_measured_routing(
    client: httpx.AsyncClient, app: FastAPI, docs: str, stubs: dict[str, StubServer]
) -> None:
    for stub in stubs.values():
        stub.reset()
    first = await _ask(client, docs, policy=MEASURED)
    route = first["route"]
    assert isinstance(route, dict)
    assert route["model"] == "gpt"  # nothing measured yet: catalog order
    assert route["score"] == {"quality": None, "n": 0, "source": "none"}
    assert "measured" in route["reason"]

    response = await client.post("/v1/feedback", json={"answer_id": first["answer_id"], "value": 1})
    assert response.status_code == 200, response.text
    assert response.json() == {"answer_id": first["answer_id"], "value": 1}
    # A change of mind replaces the rating (gpt: one 👎, not one of each).
    rating = {"answer_id": first["answer_id"], "value": -1, "comment": "too short"}
    assert (await client.post("/v1/feedback", json=rating)).status_code == 200
    second = await _ask(client, docs, model="vllm")
    rating = {"answer_id": second["answer_id"], "value": 1}
    assert (await client.post("/v1/feedback", json=rating)).status_code == 200

    models = {m["name"]: m for m in (await client.get("/v1/models")).json()["models"]}
    gpt, vllm = models["gpt"]["score"], models["vllm"]["score"]
    assert (gpt["feedback_up"], gpt["feedback_down"], gpt["n"]) == (0, 1, 1)
    assert gpt["quality"] == 0 and gpt["sources"] == ["feedback"]
    assert vllm["quality"] == 1 and vllm["upper"] == 1 and vllm["lower"] > 0

    third = await _ask(client, docs, policy=MEASURED)
    route = third["route"]
    assert isinstance(route, dict)
    assert route["model"] == "vllm"
    assert route["score"] == {"quality": 1.0, "n": 1, "source": "feedback"}

    metrics = (await client.get("/metrics")).text
    assert 'rag_model_quality{bound="estimate",model="vllm"} 1.0' in metrics


async def test_feedback_refusals(client: httpx.AsyncClient, app: FastAPI, docs: str) -> None:
    answer = await _ask(client, docs)
    unknown = await client.post("/v1/feedback", json={"answer_id": "no-such-id", "value": 1})
    assert_error(unknown, 404, "not_found")
    assert "no answer 'no-such-id' to rate" in unknown.json()["error"]["message"]
    bad = await client.post("/v1/feedback", json={"answer_id": answer["answer_id"], "value": 3})
    assert bad.status_code == 422
    other = key_headers(app, "another-reader", ["query"])
    theirs = await client.post(
        "/v1/feedback", json={"answer_id": answer["answer_id"], "value": 1}, headers=other
    )
    assert_error(theirs, 404, "not_found")

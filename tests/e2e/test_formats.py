"""Every format of the fixture set (tests/fixtures/formats, real files from public parsing
projects' test data, README there) through the real API in one upload: each file is indexed or
fails alone with a reason, and the strings planted.json lists for it are found in the top 5
(hybrid retrieval, the string as the question) in at least 95% of cases."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.conftest import FIXTURES, make_settings
from tests.e2e.test_api import wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
FORMATS = FIXTURES / "formats"
TARGET = 0.95


def planted() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((FORMATS / "planted.json").read_text())
    return entries


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _shown(hit: dict[str, Any]) -> str:
    """What a hit shows: its text under its heading path (a planted heading counts)."""
    return _words(f"{hit['section'] or ''} {hit['text']}")


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    settings = make_settings(tmp_path_factory.mktemp("formats"), api={"max_upload_mb": 20})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def job(client: httpx.AsyncClient) -> dict[str, Any]:
    assert (await client.post("/v1/collections", json={"name": "formats"})).status_code == 201
    names = sorted({entry["file"] for entry in planted()})
    files = [("files", (name, (FORMATS / name).read_bytes())) for name in names]
    response = await client.post("/v1/collections/formats/documents", files=files)
    assert response.status_code == 202, response.text
    return await wait_for_job(client, response.json()["id"], timeout_s=900)


async def test_every_file_is_indexed_or_fails_with_a_reason(job: dict[str, Any]) -> None:
    by_source = {d["source"]: d for d in job["documents"]}
    failed = {s: d["error"] for s, d in by_source.items() if d["status"] == "failed"}
    assert all(failed.values()), failed  # a failure always says why
    assert not failed, f"fixtures that did not index: {failed}"
    assert {entry["file"] for entry in planted()} <= by_source.keys()
    assert job["rejected"] == []


async def test_planted_strings_are_retrieved_in_the_top_5(
    client: httpx.AsyncClient, job: dict[str, Any]
) -> None:
    missed, total = [], 0
    for entry in planted():
        for string in entry["strings"]:
            total += 1
            body = {"collection": "formats", "question": string, "top_k": 5}
            hits = (await client.post("/v1/retrieve", json=body)).json()["hits"]
            if not any(
                h["source"].startswith(entry["file"]) and _words(string) in _shown(h) for h in hits
            ):
                missed.append(f"{entry['file']}: {string!r}")
    rate = 1 - len(missed) / total
    print(f"\nplanted strings in the top 5: {total - len(missed)}/{total} = {rate:.1%}")
    assert rate >= TARGET, "missed:\n" + "\n".join(missed)

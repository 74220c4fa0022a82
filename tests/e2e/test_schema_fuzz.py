"""Fuzz every operation of the OpenAPI schema with schemathesis against the real service.

The app runs with its real lifespan (Redis broker, embedded Qdrant, the embedding model, the
local LLM) under uvicorn on a free 127.0.0.1 port, in a thread. Schemathesis loads
/openapi.json from it; per operation, its coverage phase (values at and past each constraint,
missing parts, unexpected methods) runs first, then Hypothesis draws requests that follow the
schema and requests that break it. All carry an admin key. A collection, an indexed document and
its job exist beforehand, and a generated name or id is often theirs (or a catalog model's), so
requests reach real objects too.

Every response must be below 500, and every error must be in the service's JSON error format
`{"error": {"code": str, "message": str, ...}}` (api/errors.py). Schemathesis's conformance
checks (status codes, content types and bodies as documented) run on the same responses
without failing anything: `test_report` prints what they found, with the statuses seen.

schemathesis 4.32's own pytest integration (`schemathesis.pytest.from_fixture`) does not run on
pytest 9.2 (it sets `request.node._nodeid`, which pytest no longer has), hence plain Hypothesis
over `APIOperation.as_strategy()` here. Each operation has a fixed seed: a run repeats the last.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from api.main import create_app
from rag.generation.model_catalog import BUILTIN_PACKAGED
from tests.conftest import POSTGRES_ADMIN_URL, SESSION, make_settings
from tests.e2e.serve import serving

schemathesis = pytest.importorskip("schemathesis", minversion="4.32")
from schemathesis.core.failures import FailureGroup  # noqa: E402  (after the skip)

pytestmark = pytest.mark.slow

COLLECTION = "fuzz"
REQUEST_TIMEOUT_S = 60  # also bounds how long a Server-Sent Events stream is read
MAX_EXAMPLES = 150  # per operation, after its coverage cases; a request takes ~10 ms
SLOW = {"POST /v1/query": 20, "POST /openai/v1/chat/completions": 20}  # the local LLM answers
CONFORMANCE = ("status_code_conformance", "content_type_conformance", "response_schema_conformance")

# Values that often break what is behind a schema: 64-bit integer and double limits (SQLite,
# PostgreSQL, JSON), NULs (PostgreSQL text, file names), traversal and names longer than file
# systems (255 bytes) and columns (1024) take, extreme dates with an offset (time zone
# arithmetic). Every string or integer parameter and body field is one of them (one the schema
# allows, in a valid request) a fifth of the time.
EDGE_INTEGERS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64]
EDGE_STRINGS = [
    "\x00",
    "a\x00b",
    "../../etc/passwd",
    "%00",
    "\u202e",
    " ",
    "x" * 1100,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]
EDGE_PROBABILITY = 0.2


def _spec() -> dict[str, Any]:
    """The OpenAPI document, from an app that is never started."""
    return create_app(make_settings(Path("unused"))).openapi()


def _operations() -> list[str]:
    spec = _spec()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


def _typed_fields(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Schemathesis binding keys ("query.offset", "body.documents[*].source"...) of every string
    and integer parameter and body field, by type. (Schemathesis's own type-wide dictionaries
    skip a field whose type is in an `anyOf`, as every optional one of FastAPI's is.)"""
    found: dict[str, set[str]] = {"string": set(), "integer": set()}

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(node: dict[str, Any], key: str, depth: int = 0) -> None:
        node = resolve(node)
        alternatives = [resolve(n) for n in node.get("anyOf", [])] or [node]
        types = {t for n in alternatives for t in _as_list(n.get("type"))}
        binary = any(n.get("format") == "binary" for n in alternatives)  # an uploaded file
        for kind in ("string", "integer"):
            if kind in types and not binary:
                found[kind].add(key)
                break
        if depth >= 3:
            return
        for alternative in alternatives:
            for name, sub in alternative.get("properties", {}).items():
                walk(sub, f"{key}.{name}" if key != "body" else f"body.{name}", depth + 1)
            if "items" in alternative:
                walk(alternative["items"], f"{key}[*]", depth + 1)

    for item in spec["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query"):
                    walk(parameter["schema"], f"{parameter['in']}.{parameter['name']}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], "body")
    found["string"].discard("body")
    found["integer"] -= found["string"]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


@dataclass
class Served:
    app: FastAPI
    base_url: str
    key: str
    existing: dict[str, list[str]]  # parameter name -> values that name existing objects
    # operation -> (path parameter, values never sent): what the other requests rely on
    protected: dict[str, tuple[str, set[str]]]
    statuses: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    findings: dict[str, set[str]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def _seed(client: httpx.Client) -> dict[str, list[str]]:
    """A collection with one indexed document, so that some requests reach existing objects."""
    response = client.post("/v1/collections", json={"name": COLLECTION})
    assert response.status_code == 201, response.text
    text = "# Opening hours\n\nThe library opens at nine and closes at five on weekdays."
    response = client.post(
        f"/v1/collections/{COLLECTION}/documents/text",
        json={"documents": [{"source": "hours.md", "text": text}]},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 300
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    catalog = client.get("/v1/models").json()
    return {
        "collection": [COLLECTION],
        "job_id": [job_id],
        "document_id": [job["documents"][0]["document_id"]],
        # Not the packaged instruct models: each loads 0.5-1.1 GB and takes seconds an answer,
        # and `local` and the extractive already reach every routing path.
        "model": [m["name"] for m in catalog["models"] if m["name"] not in BUILTIN_PACKAGED],
        "policy": list(catalog["policies"]),
    }


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """SQLite, or a PostgreSQL database of this module's own (what the fuzzing leaves behind,
    keys and collections with odd names, reaches no other test), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{data_dir / 'rag.db'}"
        return
    name = f"rag_fuzz_{SESSION}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - says what is missing instead of erroring
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is needed for this test: {exc}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def served(data_dir: Path, database_url: str) -> Iterator[Served]:
    """The real app under uvicorn in a thread (its lifespan runs there), with an admin key."""
    settings = make_settings(data_dir, database_url=database_url, api={"max_upload_mb": 1})
    app = create_app(settings)
    with serving(app) as base_url:
        assert httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200
        # No rate limit on this key (0 = unlimited): a 429 would only hide what is behind it.
        key = app.state.runtime.keys.create(
            "fuzz-admin", ["admin"], query_per_minute=0, ingest_per_minute=0
        )
        headers = {"Authorization": f"Bearer {key.key}"}
        with httpx.Client(base_url=base_url, timeout=120, headers=headers) as client:
            existing = _seed(client)
        protected = {
            "DELETE /v1/collections/{collection}": ("collection", {COLLECTION}),
            "DELETE /v1/keys/{key}": ("key", {key.name, key.id}),
        }
        yield Served(app, base_url, str(key.key), existing, protected)


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    fields = _typed_fields(_spec())
    parameters = {
        key: {"dictionary": f"edge-{kind}s", "probability": EDGE_PROBABILITY}
        for kind, keys in fields.items()
        for key in sorted(keys)
    }
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": REQUEST_TIMEOUT_S,
            "max-stream-events": 50,
            "generation": {
                # The key goes in every request; a generated Authorization header would only
                # be replaced.
                "with-security-parameters": False,
                "database": "none",
            },
            "dictionaries": {
                "edge-strings": {"values": EDGE_STRINGS},
                "edge-integers": {"values": EDGE_INTEGERS},
            },
            "parameters": parameters,
        }
    )
    return schemathesis.openapi.from_url(f"{served.base_url}/openapi.json", config=config)


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _error_format_problem(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:300]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"no 'error' object: {body!r}"[:300]
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"'error' lacks code/message strings: {error!r}"[:300]
    return None


def _record_conformance(case: Any, response: Any, served: Served) -> None:
    """Schemathesis's own conformance checks: recorded for the report, never failing."""
    checks = [getattr(schemathesis.checks, name) for name in CONFORMANCE]
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        for failure in group.exceptions:
            key = f"{case.operation.label} -> {response.status_code}: {failure.title}"
            served.findings.setdefault(key, set()).add(failure.message.splitlines()[0][:200])


def _point_at_existing(case: Any, existing: dict[str, list[str]], pick: int) -> None:
    """Make every path or query parameter or top-level body field named like an object that
    exists (a collection, job, document, model, policy) name that object."""
    for container in (case.path_parameters, case.query, case.body):
        if not isinstance(container, dict):
            continue
        for name, values in existing.items():
            if name in container:
                container[name] = values[pick % len(values)]


def _check(case: Any, served: Served) -> None:
    if protected := served.protected.get(case.operation.label):
        name, values = protected
        if (case.path_parameters or {}).get(name) in values:
            return  # the fixture's collection and this test's own key stay
    response = case.call(
        base_url=served.base_url, headers=served.headers, timeout=REQUEST_TIMEOUT_S
    )
    served.statuses[(case.operation.label, response.status_code, _error_code(response))] += 1
    _record_conformance(case, response, served)
    # A 5xx fails with schemathesis's report: the response and a curl command that repeats it.
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        problem = _error_format_problem(response)
        curl = case.as_curl_command(headers=served.headers)
        assert problem is None, f"{curl}\n-> {response.status_code}: {problem}"


def _coverage_cases(schema: Any, operation: Any) -> list[Any]:
    """Schemathesis's coverage phase: deterministic cases at and just past each constraint
    (bounds, types, missing required parts, unexpected methods), valid and invalid."""
    generation = schema.config.generation_for(operation=operation, phase="coverage")
    return list(
        schema.iter_coverage_cases(
            operation, generation_modes=generation.modes, generation_config=generation
        )
    )


@pytest.mark.parametrize("label", _operations())
def test_no_5xx_and_errors_in_our_format(label: str, api_schema: Any, served: Served) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served schema"
    strategy = st.one_of(
        [operation.as_strategy(generation_mode=mode) for mode in schemathesis.GenerationMode]
    )

    @settings(
        max_examples=SLOW.get(label, MAX_EXAMPLES),
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
    )
    # `existing` >= 0 (most cases, and each coverage case once more): every field that names a
    # collection, job, document, model or policy names one that exists; < 0: as generated.
    @given(case=strategy, existing=st.integers(min_value=-3, max_value=7))
    def fuzz(case: Any, existing: int) -> None:
        if existing >= 0:
            case = case.derive()  # its own containers: an example's case is used twice
            _point_at_existing(case, served.existing, existing)
        _check(case, served)

    for case in _coverage_cases(api_schema, operation):
        fuzz = example(case=case, existing=-1)(fuzz)
        fuzz = example(case=case, existing=0)(fuzz)
    seed(zlib.crc32(label.encode()))(fuzz)()  # fixed, and each operation its own


def test_report(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """Print the statuses (and error codes) seen per operation and the conformance findings."""
    lines = ["", "schema fuzz: responses per operation, status and error code"]
    lines += [
        f"  {label}: {status} {code} x{n}".replace("  x", " x")
        for (label, status, code), n in sorted(served.statuses.items())
    ]
    lines.append(f"conformance findings ({len(served.findings)}; not failures):")
    for key, messages in sorted(served.findings.items()):
        lines.append(f"  {key}")
        lines += [f"      {m}" for m in sorted(messages)[:3]]
    with capsys.disabled():
        print("\n".join(lines))

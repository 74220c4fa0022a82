"""Shared fixtures. Every test talks to real parts: Redis, a Celery worker, Qdrant, the models.

Each test session uses its own Celery queue (and scratch folders), so runs never see each other's
tasks; PostgreSQL tests get a database of their own that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SESSION = uuid.uuid4().hex[:8]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["RAG_WORKER__QUEUE"] = f"rag-test-{SESSION}"
# Every test process shares one ONNX export of the embedder (made once, keyed by the model's hash).
os.environ.setdefault("RAG_EMBEDDING__CACHE_DIR", str(Path.home() / ".cache" / "rag" / "onnx"))

from rag.config import Settings  # noqa: E402  (after the environment is set)

POSTGRES_ADMIN_URL = os.environ.get(
    "RAG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "docs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    from sqlalchemy import create_engine, text

    name = f"rag_test_{SESSION}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - says what is missing instead of erroring
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is needed for this test: {exc}")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rag.db'}"
    return str(request.getfixturevalue("postgres_url"))


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: scratch data folder; Qdrant embedded unless QDRANT_URL is set (then
    the same tests run against that server); the worker always runs in-process."""
    overrides.setdefault("worker", {"embedded": True, "queue": os.environ["RAG_WORKER__QUEUE"]})
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    settings.qdrant.collection_prefix = f"t{SESSION}_{uuid.uuid4().hex[:6]}_"
    return settings

"""Schema migrations against real databases.

Replicas that start together against an empty PostgreSQL database (a Helm rollout) all come
up: one of them migrates while the others wait for it, then find the schema at head.
(Processes: alembic's migration context is process-global, as replicas are.)"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, text

from rag.db.session import MIGRATIONS, Database
from tests.conftest import POSTGRES_ADMIN_URL


@contextmanager
def _empty_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rag.db'}"
        return
    with _empty_postgres("rag_migrate") as url:
        yield url


@pytest.mark.postgres
def test_replicas_migrating_at_once_all_start() -> None:
    with _empty_postgres("rag_race") as url:
        start = f"from rag.db.session import open_database; open_database({url!r}).ping()"
        replicas = [
            subprocess.Popen([sys.executable, "-c", start], stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        for replica in replicas:
            _, err = replica.communicate(timeout=120)
            assert replica.returncode == 0, err.decode()[-2000:]


def _insert(conn: sa.Connection, table: str, **values: object) -> None:
    """A row in the schema of an older revision (the ORM's tables are at head)."""
    columns = [
        sa.column(k, sa.JSON() if isinstance(v, dict | list) else None) for k, v in values.items()
    ]
    conn.execute(sa.table(table, *columns).insert().values(**values))


def test_fields_learnt_before_0006_get_their_readers_from_the_documents(
    empty_database: str,
) -> None:
    from alembic import command
    from alembic.config import Config

    db = Database(empty_database)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    command.upgrade(config, "0005")
    now = datetime(2026, 1, 1)
    fields = {"team": "keyword", "salary_band": "keyword"}
    row = {"created_at": now, "collection_id": "c1", "format": "markdown", "version": 1}
    row |= {"content_hash": "0" * 64, "size_bytes": 1, "status": "indexed", "chunk_count": 1}
    with db.engine.begin() as conn:
        _insert(conn, "collections", id="c1", name="c", description="", embedding_model="m",
                dimension=3, metadata_fields=fields, created_at=now)  # fmt: skip
        for source, metadata, access in [
            ("public.md", {"team": "ops"}, ["*"]),
            ("pay.md", {"salary_band": "B", "team": "hr"}, ["group:hr"]),
        ]:
            _insert(conn, "documents", id=source, source=source, title=source, file_path=source,
                    updated_at=now, metadata=metadata, access=access, **row)  # fmt: skip
    db.migrate()
    column = sa.column("metadata_field_access", sa.JSON())
    with db.engine.connect() as conn:
        readers = conn.scalar(sa.select(column).select_from(sa.table("collections")))
    db.dispose()
    assert readers == {"salary_band": ["group:hr"], "team": ["*", "group:hr"]}

"""Replicas that start together against an empty PostgreSQL database (a Helm rollout) all come
up: one of them migrates while the others wait for it, then find the schema at head.
(Processes: alembic's migration context is process-global, as replicas are.)"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


def test_replicas_migrating_at_once_all_start() -> None:
    name = f"rag_race_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        start = f"from rag.db.session import open_database; open_database({url!r}).ping()"
        replicas = [
            subprocess.Popen([sys.executable, "-c", start], stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        for replica in replicas:
            _, err = replica.communicate(timeout=120)
            assert replica.returncode == 0, err.decode()[-2000:]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

"""Web UI sessions against the real database: a session is its key, checked every time; it
ends when signed out, expired or its key revoked; only the token's hash is stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from rag.auth import ApiKeys
from rag.db.session import open_database
from rag.db.tables import UiSessionRow
from rag.errors import Unauthenticated
from rag.sessions import Sessions


@pytest.fixture
def keys(tmp_path: Path) -> ApiKeys:
    return ApiKeys(open_database(f"sqlite:///{tmp_path}/rag.db"), cache_s=0)


def test_a_session_is_its_key_until_signed_out(keys: ApiKeys) -> None:
    created = keys.create("reader", ["query"], groups=["hr"])
    sessions = Sessions(keys.db, keys, ttl_s=60)
    token, opened = sessions.open(created.key)
    assert opened.principal.name == "reader" and opened.principal.groups == ("hr",)
    resolved = sessions.resolve(token)
    assert resolved.principal == opened.principal and resolved.csrf == opened.csrf
    with keys.db.session() as session:
        stored = session.scalars(select(UiSessionRow.id)).all()
    assert token not in stored and len(stored) == 1  # only its hash
    sessions.close(token)
    with pytest.raises(Unauthenticated, match="signed out"):
        sessions.resolve(token)


def test_a_session_ends_with_its_key_or_its_time(keys: ApiKeys) -> None:
    created = keys.create("short", ["query"])
    token, _ = Sessions(keys.db, keys, ttl_s=0.3).open(created.key)
    other = Sessions(keys.db, keys, ttl_s=0.3)  # another API process
    other.resolve(token)
    time.sleep(0.4)
    with pytest.raises(Unauthenticated, match="expired"):
        other.resolve(token)

    sessions = Sessions(keys.db, keys, ttl_s=60)
    token, _ = sessions.open(created.key)
    keys.revoke("short")
    with pytest.raises(Unauthenticated, match="revoked"):
        sessions.resolve(token)
    with pytest.raises(Unauthenticated):
        sessions.open(created.key)
    with pytest.raises(Unauthenticated):
        sessions.resolve("not-a-token")

"""Web UI sessions. A browser signs in once with an API key; from then on its cookie holds a
random token naming a session row, which names the key. The secret is neither kept by the
browser nor stored here, and the key is checked again on every request: revoking it ends its
sessions (at once in this process, within `auth.key_cache_s` in others). Each session has a
CSRF token, required on every request that changes something."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from rag.auth import ApiKeys, Principal
from rag.db.session import Database
from rag.db.tables import UiSessionRow, utcnow
from rag.digests import sha256_text
from rag.errors import Unauthenticated

CACHE_S = 5.0
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf: str


class Sessions:
    def __init__(self, db: Database, keys: ApiKeys, *, ttl_s: float):
        self.db, self.keys, self.ttl_s = db, keys, ttl_s
        self._rows: dict[str, tuple[float, str, str, float]] = {}  # digest → (seen, key, csrf, end)

    def open(self, api_key: str) -> tuple[str, SignedIn]:
        """Sign in: the cookie's token and the session; `Unauthenticated` for a bad key."""
        principal = self.keys.authenticate(api_key.strip())
        assert principal.key_id is not None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = utcnow()
        with self.db.session() as session:
            session.execute(delete(UiSessionRow).where(UiSessionRow.expires_at < now))
            session.add(
                UiSessionRow(
                    id=sha256_text(token),
                    key_id=principal.key_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.ttl_s),
                )
            )
        return token, SignedIn(principal, csrf)

    def resolve(self, token: str) -> SignedIn:
        """The signed-in session; `Unauthenticated` when it ended, expired or its key was
        revoked."""
        digest, now = sha256_text(token), time.monotonic()
        cached = self._rows.get(digest)
        if cached is None or now - cached[0] >= CACHE_S:
            with self.db.session() as session:
                row = session.get(UiSessionRow, digest)
                if row is None:
                    raise Unauthenticated("you are signed out: sign in again")
                left = (row.expires_at - utcnow()).total_seconds()
                cached = (now, row.key_id, row.csrf, now + left)
            if len(self._rows) > CACHE_SIZE:
                self._rows.clear()
            self._rows[digest] = cached
        _, key_id, csrf, ends = cached
        if now >= ends:
            self.close(token)
            raise Unauthenticated("your session has expired: sign in again")
        return SignedIn(self.keys.principal_of(key_id), csrf)

    def close(self, token: str) -> None:
        digest = sha256_text(token)
        self._rows.pop(digest, None)
        with self.db.session() as session:
            session.execute(delete(UiSessionRow).where(UiSessionRow.id == digest))

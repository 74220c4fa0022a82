"""API keys and the principal a request runs as.

A key reads `rag_<id>_<secret>`. Only SHA-256(secret) is stored: the secret is 256 random bits,
so a fast hash is as safe as a slow one and costs nothing per request; the comparison is
constant-time. A key has scopes (`query`, `ingest`, `admin`; admin implies the others), the
collections it may use (none listed = all) and the groups whose documents it may read. A
`delegate` key (a chat bot) may name an end user per request; that user's groups then apply.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select, update

from rag.access import principal_tokens
from rag.db.session import Database
from rag.db.tables import ApiKeyRow, utcnow
from rag.digests import sha256_text
from rag.errors import ConflictError, Forbidden, InvalidInput, NotFoundError, Unauthenticated
from rag.models import UtcDatetime

Scope = Literal["query", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = ("query", "ingest", "admin")
PREFIX = "rag_"
TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per key
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    """Who a request runs as: a key, and the end user it acts for if it is a delegate."""

    name: str
    scopes: frozenset[str]
    collections: frozenset[str] | None = None  # None = all
    groups: tuple[str, ...] = ()
    user: str | None = None
    key_id: str | None = None
    delegate: bool = False
    query_per_minute: float | None = None
    ingest_per_minute: float | None = None

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require(self, scope: Scope, *alternatives: Scope) -> None:
        """`Forbidden` unless the key holds `scope` or one of the `alternatives`."""
        if not any(self.allows(s) for s in (scope, *alternatives)):
            needed = " or ".join(repr(s) for s in (scope, *alternatives))
            raise Forbidden(f"this API key lacks the {needed} scope")

    def require_unrestricted(self) -> None:
        """Keys, the audit log and new collections span collections: a key limited to some
        may not manage them (it could mint itself a wider key)."""
        if self.collections is not None:
            raise Forbidden("this needs an admin key that is not limited to collections")

    def check_collection(self, name: str) -> None:
        """A collection outside the key's list is reported exactly as a missing one."""
        if self.collections is not None and name not in self.collections:
            raise NotFoundError(f"collection {name!r} not found")

    def visible(self, collection: str | None) -> frozenset[str] | None:
        """The collections a listing covers: the one asked for, else all the key may use."""
        if collection is None:
            return self.collections
        self.check_collection(collection)
        return frozenset({collection})

    @property
    def access(self) -> list[str] | None:
        """Access tokens for retrieval; None = every document (an admin acting as itself)."""
        if "admin" in self.scopes and self.user is None:
            return None
        return principal_tokens(self.groups, self.user)

    def acting_for(self, user: str, user_groups: Mapping[str, Sequence[str]]) -> Principal:
        if not self.delegate:
            raise Forbidden("only a delegate key may act for an end user (X-On-Behalf-Of)")
        groups = tuple(user_groups.get(user, ()))
        principal_tokens(groups, user)  # a malformed user or group name: 422 now
        return replace(self, user=user, groups=groups)


ANONYMOUS = Principal(name="anonymous", scopes=frozenset({"admin"}))


class ApiKeyInfo(BaseModel):
    id: str
    name: str
    scopes: list[str]
    collections: list[str] | None
    groups: list[str]
    delegate: bool
    query_per_minute: float | None
    ingest_per_minute: float | None
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class CreatedKey(ApiKeyInfo):
    key: str  # shown once


def _principal(row: ApiKeyRow) -> Principal:
    return Principal(
        name=row.name,
        scopes=frozenset(row.scopes),
        collections=None if row.collections is None else frozenset(row.collections),
        groups=tuple(row.groups),
        key_id=row.id,
        delegate=row.delegate,
        query_per_minute=row.query_per_minute,
        ingest_per_minute=row.ingest_per_minute,
    )


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo.model_validate(row, from_attributes=True)


class ApiKeys:
    def __init__(self, db: Database, *, cache_s: float = 5.0):
        """`cache_s`: how long a verified key is trusted without reading its row again (a
        revocation reaches other processes within this time; this process's at once)."""
        self.db = db
        self.cache_s = cache_s
        self._touched: dict[str, float] = {}
        self._verified: dict[str, tuple[float, Principal]] = {}

    def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        collections: Collection[str] | None = None,
        groups: Iterable[str] = (),
        delegate: bool = False,
        query_per_minute: float | None = None,
        ingest_per_minute: float | None = None,
    ) -> CreatedKey:
        scopes = sorted(set(scopes))
        if not scopes or not set(scopes) <= set(SCOPES):
            raise InvalidInput(f"scopes must be some of {', '.join(SCOPES)}; got {scopes}")
        if not name.strip() or len(name) > 128:
            raise InvalidInput("a key needs a name of 1-128 characters")
        groups = list(groups)
        principal_tokens(groups)  # names checked now, not at first use
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=key_id,
            name=name.strip(),
            secret_hash=sha256_text(secret),
            scopes=scopes,
            collections=None if collections is None else sorted(collections),
            groups=groups,
            delegate=delegate,
            query_per_minute=query_per_minute,
            ingest_per_minute=ingest_per_minute,
            created_at=utcnow(),
        )
        with self.db.session() as session:
            if session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.name == row.name)):
                raise ConflictError(f"a key named {row.name!r} already exists")
            session.add(row)
            session.flush()
            info = _info(row)
        return CreatedKey(**info.model_dump(), key=f"{PREFIX}{key_id}_{secret}")

    def list(self) -> list[ApiKeyInfo]:
        with self.db.session() as session:
            return [_info(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]

    def revoke(self, name_or_id: str) -> ApiKeyInfo:
        with self.db.session() as session:
            row = session.scalar(
                select(ApiKeyRow).where(
                    (ApiKeyRow.id == name_or_id) | (ApiKeyRow.name == name_or_id)
                )
            )
            if row is None:
                raise NotFoundError(f"API key {name_or_id!r} not found")
            row.revoked_at = row.revoked_at or utcnow()
            self._verified.clear()
            return _info(row)

    def authenticate(self, presented: str) -> Principal:
        """The key's principal; `Unauthenticated` for a malformed, unknown or revoked key."""
        return self._cached(sha256_text(presented), lambda: self._verify(presented))

    def principal_of(self, key_id: str) -> Principal:
        """The principal of a key by its id (a web UI session names the key it signed in
        with), cached like `authenticate`; `Unauthenticated` once it is revoked or gone."""
        return self._cached(f"id:{key_id}", lambda: self._load(key_id))

    def _cached(self, cache_key: str, load: Callable[[], Principal]) -> Principal:
        """A principal verified within `cache_s`, else `load()`ed and remembered."""
        now = time.monotonic()
        cached = self._verified.get(cache_key)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        principal = load()
        if len(self._verified) > CACHE_SIZE:
            self._verified.clear()
        self._verified[cache_key] = (now, principal)
        return principal

    def _load(self, key_id: str) -> Principal:
        with self.db.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("the API key this session signed in with was revoked")
            principal = _principal(row)
        self._touch(key_id)
        return principal

    def _verify(self, presented: str) -> Principal:
        key_id, _, secret = presented.removeprefix(PREFIX).partition("_")
        if not presented.startswith(PREFIX) or not key_id or not secret:
            raise Unauthenticated("malformed API key: expected rag_<id>_<secret>")
        with self.db.session() as session:
            row = session.get(ApiKeyRow, key_id)  # the id is public; the secret is compared
            if (
                row is None
                or row.revoked_at is not None
                or not hmac.compare_digest(row.secret_hash, sha256_text(secret))
            ):
                raise Unauthenticated("invalid or revoked API key")
            principal = _principal(row)
        self._touch(key_id)
        return principal

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        self._touched[key_id] = now
        with self.db.session() as session:
            session.execute(
                update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=utcnow())
            )

"""The audit log: who did what, when, to which collection; written off the request path.

`record` only queues the entry; a writer thread inserts them in batches, so a query does not
wait for a database write. `flush` (called by `page` and at shutdown) writes what is queued.
Entries hold identifiers (key, user, collection, document ids), never document text, and the
question text only when configured.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import insert, select

from rag.db.session import Database
from rag.db.tables import AuditRow, utcnow
from rag.errors import BackendUnavailable, InvalidInput
from rag.models import UtcDatetime

if TYPE_CHECKING:
    from rag.auth import Principal

log = logging.getLogger(__name__)
BATCH = 500


class AuditEntry(BaseModel):
    id: int
    at: UtcDatetime
    key_name: str | None
    user: str | None
    action: str
    collection: str | None
    target: str | None
    status: int
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, db: Database, *, interval_s: float = 1.0):
        self.db = db
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._write = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="audit-writer", daemon=True
        )
        self._thread.start()

    def record(
        self,
        action: str,
        *,
        key_name: str | None,
        user: str | None = None,
        collection: str | None = None,
        target: str | None = None,
        status: int = 200,
        **detail: Any,
    ) -> None:
        self._queue.put(
            {
                "at": utcnow(),
                "key_name": _clip(key_name, 128),
                "user": _clip(user, 256),
                "action": _clip(action, 64) or "",
                "collection": _clip(collection, 64),
                "target": _clip(target, 1024),
                "status": status,
                "detail": detail,
            }
        )

    def record_for(self, principal: Principal, action: str, **fields: Any) -> None:
        """An entry for what `principal` did: its key's name and the end user it acted for."""
        self.record(action, key_name=principal.name, user=principal.user, **fields)

    def flush(self) -> None:
        with self._write:
            rows: list[dict[str, Any]] = []
            while True:
                try:
                    rows.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                if len(rows) >= BATCH:
                    self._insert(rows)
                    rows = []
            if rows:
                self._insert(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.db.session() as session:
                session.execute(insert(AuditRow), rows)
        except BackendUnavailable:  # the database is down: keep them for the next round
            log.exception("could not write %d audit entries; will retry", len(rows))
            for row in rows:
                self._queue.put(row)
            raise
        except Exception:  # one entry the database refuses must not block the others
            if len(rows) == 1:
                log.exception("audit entry refused by the database, dropped: %s", rows[0])
                return
            for row in rows:
                self._insert([row])

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            with contextlib.suppress(Exception):  # logged in _insert; the entries stay queued
                self.flush()

    def page(
        self,
        *,
        key_name: str | None = None,
        action: str | None = None,
        collection: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first."""
        self.flush()
        query = select(AuditRow)
        for column, value in (
            (AuditRow.key_name, key_name),
            (AuditRow.action, action),
            (AuditRow.collection, collection),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditRow.at >= _naive(since))
        if until is not None:
            query = query.where(AuditRow.at < _naive(until))
        query = query.order_by(AuditRow.id.desc()).limit(limit).offset(offset)
        with self.db.session() as session:
            return [
                AuditEntry.model_validate(r, from_attributes=True) for r in session.scalars(query)
            ]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.error("%d audit entries could not be written at shutdown", self._queue.qsize())


def _naive(moment: datetime) -> datetime:
    """Stored times are naive UTC."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable moment
        raise InvalidInput(f"{moment.isoformat()} is out of range in UTC") from None


def _clip(value: str | None, size: int) -> str | None:
    """What a column takes: an entry that cannot be inserted would block all after it (they are
    written in batches, and kept until written)."""
    return None if value is None else value.replace("\x00", "\ufffd")[:size]

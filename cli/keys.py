"""`rag keys create|list|revoke`: API keys, managed on the database directly (the first key
cannot come from the API, which needs one); the same as /v1/keys for an admin key."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import console, err, fail, split_list

if TYPE_CHECKING:
    from rag.audit import AuditLog
    from rag.auth import ApiKeys

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@contextmanager
def _keys() -> Iterator[tuple[ApiKeys, AuditLog]]:
    """The keys and the audit log, on the database; key changes made here are audited as the
    operating-system user who ran the command."""
    from rag.audit import AuditLog
    from rag.auth import ApiKeys
    from rag.config import get_settings
    from rag.db.session import open_database
    from rag.errors import RagError

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = open_database(settings.sqlalchemy_url)
        audit = AuditLog(db)
        try:
            yield ApiKeys(db), audit
        finally:
            audit.close()
            db.dispose()
    except RagError as exc:
        fail(exc.message)


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def _names(raw: str | None) -> list[str] | None:
    return None if raw is None else split_list(raw)


@keys_app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses it.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: query, ingest, admin.")] = "query",
    collections: Annotated[
        str | None, typer.Option(help="Comma-separated collections (default: all).")
    ] = None,
    groups: Annotated[str | None, typer.Option(help="Groups whose documents it reads.")] = None,
    delegate: Annotated[
        bool, typer.Option(help="May act for end users (X-On-Behalf-Of), e.g. a chat bot.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key.")] = False,
) -> None:
    """Create a key and print it: this is the only time its secret is shown."""
    with _keys() as (keys, audit):
        created = keys.create(
            name,
            _names(scopes) or [],
            collections=_names(collections),
            groups=_names(groups) or [],
            delegate=delegate,
        )
        audit.record(
            "key.create",
            key_name=None,
            user=_operator(),
            target=created.name,
            status=201,
            scopes=created.scopes,
        )
    if quiet:
        print(created.key)
        return
    err.print(f"created key {created.name!r} ({', '.join(created.scopes)}); store it now:")
    print(created.key)


@keys_app.command("list")
def list_keys() -> None:
    """Every key with its scopes, collections and last use (never the secret)."""
    with _keys() as (keys, _):
        listed = keys.list()
    table = Table("name", "id", "scopes", "collections", "groups", "last used", "revoked")
    for k in listed:
        table.add_row(
            k.name,
            k.id,
            ",".join(k.scopes),
            "all" if k.collections is None else ",".join(k.collections),
            ",".join(k.groups),
            str(k.last_used_at or "never")[:19],
            str(k.revoked_at or "")[:19],
        )
    console.print(table)


@keys_app.command()
def revoke(key: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with _keys() as (keys, audit):
        revoked = keys.revoke(key)
        audit.record("key.revoke", key_name=None, user=_operator(), target=revoked.name)
    console.print(f"revoked {revoked.name!r} ({revoked.id})")

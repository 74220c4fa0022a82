"""Who may read a document, as the tokens its chunks carry in the `access` payload field.

A document is readable by everyone (`*`) unless it names groups and/or users at ingest:
`group:<name>`, `user:<id>`. A principal's tokens are `*` plus its groups and its user; it
reads a chunk when the two lists share a token. The check runs inside the vector search, as
one more filter condition, so a search returns its full top-k from what the caller may read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.errors import InvalidInput
from rag.filters import Match

EVERYONE = "*"
ACCESS_KEY = "access"  # payload field of every chunk
_NAME = re.compile(r"^[\w.@+-]{1,128}$")


def _checked(kind: str, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        name = name.strip()
        if not _NAME.match(name):
            raise InvalidInput(
                f"invalid {kind} name {name!r}: use 1-128 letters, digits or . _ @ + -"
            )
        out.append(f"{kind}:{name}")
    return out


def document_access(groups: Iterable[str] = (), users: Iterable[str] = ()) -> list[str]:
    """The access list stored with a document: everyone when no group or user is named."""
    tokens = sorted(set(_checked("group", groups) + _checked("user", users)))
    return tokens or [EVERYONE]


def principal_tokens(groups: Iterable[str] = (), user: str | None = None) -> list[str]:
    return [EVERYONE, *_checked("group", groups), *_checked("user", [user] if user else [])]


def readable_by(tokens: Iterable[str]) -> Match:
    """The filter condition: the chunk's access list shares a token with `tokens`."""
    return Match(ACCESS_KEY, "keyword", tuple(tokens))


def split_access(access: Iterable[str]) -> tuple[list[str], list[str]]:
    """(groups, users) of a stored access list, for display."""
    groups = [t.removeprefix("group:") for t in access if t.startswith("group:")]
    users = [t.removeprefix("user:") for t in access if t.startswith("user:")]
    return groups, users

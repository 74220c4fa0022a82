"""Who may read a document, as the tokens its chunks carry in the `access` payload field.

A document is readable by everyone (`*`) unless it names groups and/or users at ingest:
`group:<name>`, `user:<id>`. A principal's tokens are `*` plus its groups and its user; it
reads a chunk when the two lists share a token. The check runs inside the vector search, as
one more filter condition, so a search returns its full top-k from what the caller may read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.errors import InvalidInput
from rag.filters import FieldType, Match

EVERYONE = "*"
ACCESS_KEY = "access"  # payload field of every chunk
_NAME = re.compile(r"[\w.@+-]{1,128}")  # fullmatch: `$` would take a final "\n"


def _checked(kind: str, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        name = name.strip()
        if not _NAME.fullmatch(name):
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


def field_readers(
    documents: Iterable[tuple[Mapping[str, Any], Sequence[str] | None]],
    known: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Metadata key → the access tokens of the documents carrying it, from `known` plus the
    (metadata, access) of `documents`. A key's name is itself information (`salary_band`), so it
    is shown only to callers who may read a document that has it (`visible_fields`)."""
    readers = {key: set(tokens) for key, tokens in (known or {}).items()}
    for metadata, access in documents:
        for key in metadata:
            readers.setdefault(key, set()).update(access or [EVERYONE])
    return {key: sorted(tokens) for key, tokens in readers.items()}


def visible_fields(
    fields: Mapping[str, FieldType],
    readers: Mapping[str, Sequence[str]],
    tokens: Sequence[str] | None,
) -> dict[str, FieldType]:
    """The metadata fields a caller with `tokens` may know of (None: unrestricted, all of them).
    A field with no recorded readers shows to unrestricted callers only."""
    if tokens is None:
        return dict(fields)
    mine = set(tokens)
    return {key: kind for key, kind in fields.items() if mine.intersection(readers.get(key, ()))}

"""Multipart form fields shared by the upload routes (files and archives)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form

from rag.access import document_access
from rag.errors import InvalidInput

GroupsForm = Annotated[
    str | None, Form(description="Comma-separated groups that may read these files.")
]
UsersForm = Annotated[str | None, Form(description="Comma-separated users that may read them.")]
MetadataForm = Annotated[str | None, Form(description="JSON object stored on every file")]


def access_form(groups: str | None, users: str | None) -> list[str] | None:
    """Comma-separated form fields → the stored access list; None when neither is given (a
    document already in the collection keeps its own)."""

    def names(raw: str | None) -> list[str]:
        return [n for n in (raw or "").split(",") if n.strip()]

    if not names(groups) and not names(users):
        return None
    return document_access(names(groups), names(users))


def metadata_form(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object")
    return value

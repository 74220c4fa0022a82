"""JSON and JSON Lines as flattened key paths ("address.city: Paris", "items[2].name: bolt").

A path in front of every value is what lets a chunk cut out of a deep document still say what its
numbers are. A record is a section: each element of a top-level array and each JSON Lines line,
titled by its own id/name/title when it has one (so that a citation names "Garden Trowel", not
"record 2"). A top-level object is one section, unless some keys hold large objects or arrays:
then each of those is a section of its own, and an array of objects under it (the usual
`{"data": [...]}` export) is split into records again.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import UnreadableDocument
from rag.models import Element, ElementKind

_TITLE_KEYS = ("title", "name", "id")
_MAX_TITLE = 120
# A top-level key holding this many values or more becomes a section of its own.
_LARGE = 20


def partition_json(path: Path) -> list[Element]:
    """Bytes go to `json.loads`, which detects UTF-8, UTF-16 or UTF-32 as RFC 8259 allows."""
    data = path.read_bytes()
    try:
        value = json.loads(data)
        return _document(value)
    except json.JSONDecodeError as exc:
        raise UnreadableDocument(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise UnreadableDocument("JSON file is not UTF-8, UTF-16 or UTF-32 text") from exc
    except RecursionError as exc:
        raise UnreadableDocument("JSON nested too deeply") from exc


def partition_jsonl(path: Path) -> list[Element]:
    """One record per line; JSON Lines is UTF-8 by definition, so lines split on bytes."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    records: list[Any] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise UnreadableDocument(f"JSON Lines line {number} is not UTF-8 text") from exc
        except json.JSONDecodeError as exc:
            raise UnreadableDocument(
                f"invalid JSON at line {number}, column {exc.colno}: {exc.msg}"
            ) from exc
    try:
        return _records(records, level=1, label="record")
    except RecursionError as exc:
        raise UnreadableDocument("JSON nested too deeply") from exc


def _document(value: Any) -> list[Element]:
    if isinstance(value, list):
        return _records(value, level=1, label="record")
    if not isinstance(value, dict):
        return _lines(value, "")
    large = {k for k, v in value.items() if isinstance(v, dict | list) and _size(v) >= _LARGE}
    if not large:
        return _record(value, _title_of(value), level=1)
    elements = [e for k, v in value.items() if k not in large for e in _lines(v, k)]
    for key in large:
        elements.append(Element(kind=ElementKind.TITLE, text=str(key), heading_level=1))
        items = value[key]
        if isinstance(items, list) and any(isinstance(i, dict) for i in items):
            elements += _records(items, level=2, label=str(key))
        else:
            elements += _lines(items, str(key))
    return elements


def _records(items: list[Any], *, level: int, label: str) -> list[Element]:
    elements: list[Element] = []
    for number, item in enumerate(items, 1):
        if isinstance(item, dict | list):
            elements += _record(item, _title_of(item) or f"{label} {number}", level=level)
        else:
            elements += _lines(item, "")
    return elements


def _record(value: Any, title: str | None, *, level: int) -> list[Element]:
    lines = _lines(value, "")
    if not lines or not title:
        return lines
    return [Element(kind=ElementKind.TITLE, text=title, heading_level=level), *lines]


def _lines(value: Any, path: str) -> list[Element]:
    return [
        Element(kind=ElementKind.TEXT, text=f"{p}: {text}" if p else text)
        for p, text in _leaves(value, path)
    ]


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        text = _scalar(value)
        if text:
            yield path, text


def _scalar(value: Any) -> str:
    """JSON's own spelling for true/false; null and "" say nothing, so they are left out."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _title_of(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    keys = {str(k).lower(): v for k, v in record.items()}
    for key in _TITLE_KEYS:
        value = keys.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = " ".join(str(value).split())
            if text and len(text) <= _MAX_TITLE:
                return text
    return None


def _size(value: Any) -> int:
    """How many values `value` holds, counting no further than `_LARGE`."""
    count = 0
    for _ in _leaves(value, ""):
        count += 1
        if count >= _LARGE:
            break
    return count

"""Metadata filters: the JSON a caller sends, checked against the fields a collection holds.

A filter maps a field to a condition, all of which must hold:

    {"source": "handbook.pdf"}                     equality
    {"team": ["hr", "legal"]}                      any of
    {"team": {"any": ["hr", "legal"]}}             the same, spelled out
    {"page": {"gte": 2, "lt": 5}}                  range on a number
    {"published": {"gte": "2024-01-01"}}           range on a date (ISO 8601)

Fields are the chunk's own (`source`, `title`, `section`, `page`, `document_id`) or keys of the
metadata given at upload. The catalog records each metadata key's type as documents arrive
(`merge_field_types`), so a filter on a field no document has, or a range on text, is refused
with a message naming the fields there are, instead of silently matching nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rag.errors import InvalidInput

FieldType = Literal["keyword", "integer", "float", "datetime", "bool"]
Scalar = str | int | float | bool

DOCUMENT_FIELDS: dict[str, FieldType] = {
    "document_id": "keyword",
    "source": "keyword",
    "title": "keyword",
    "section": "keyword",
    "page": "integer",
}
METADATA_PREFIX = "meta."
RANGE_OPS = ("gt", "gte", "lt", "lte")
_NUMERIC: tuple[FieldType, ...] = ("integer", "float")


@dataclass(frozen=True)
class Match:
    """The field equals one of `values` (for a list field: one of its items does)."""

    key: str  # storage key: a chunk field, or "meta.<name>"
    type: FieldType
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    key: str
    type: FieldType  # integer, float or datetime
    gt: float | datetime | None = None
    gte: float | datetime | None = None
    lt: float | datetime | None = None
    lte: float | datetime | None = None


Condition = Match | Range


def storage_key(field: str) -> str:
    return field if field in DOCUMENT_FIELDS else METADATA_PREFIX + field


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def infer_type(value: Any) -> FieldType | None:
    """The type a metadata value is indexed as; None for values no filter can use (objects)."""
    if isinstance(value, list):
        kinds = {infer_type(item) for item in value}
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "datetime" if _parse_datetime(value) else "keyword"
    return None


_FIELD_NAME = re.compile(r"[\w-]{1,64}")


def check_metadata_keys(metadata: Mapping[str, Any]) -> None:
    """Metadata keys become payload index paths (`meta.<key>`): letters, digits, '_' and '-'."""
    for key in metadata:
        if not _FIELD_NAME.fullmatch(key):
            raise InvalidInput(
                f"metadata key {key!r}: use 1-64 letters, digits, '_' or '-' (no spaces or dots)"
            )


def merge_field_types(
    known: Mapping[str, FieldType], metadata: Mapping[str, Any]
) -> dict[str, FieldType]:
    """`known` plus the keys of `metadata`. A key seen with two types widens: integer and float
    to float, anything else to keyword (equality still works, ranges no longer do)."""
    merged = dict(known)
    for key, value in metadata.items():
        kind = infer_type(value)
        if kind is None:
            continue
        before = merged.get(key)
        if before is None or before == kind:
            merged[key] = kind
        elif {before, kind} <= set(_NUMERIC):
            merged[key] = "float"
        else:
            merged[key] = "keyword"
    return merged


def parse_filters(
    raw: Mapping[str, Any] | None, metadata_fields: Mapping[str, FieldType]
) -> list[Condition]:
    """Validate a request's filter against a collection's fields; `InvalidInput` says why not."""
    if not raw:
        return []
    if not isinstance(raw, Mapping):
        raise InvalidInput('filters must be an object like {"field": value}')
    fields = {**metadata_fields, **DOCUMENT_FIELDS}
    conditions: list[Condition] = []
    for name, spec in raw.items():
        kind = fields.get(name)
        if kind is None:
            known = ", ".join(sorted(fields))
            raise InvalidInput(f"unknown filter field {name!r}; this collection has: {known}")
        conditions.append(_condition(name, kind, spec))
    return conditions


def _condition(name: str, kind: FieldType, spec: Any) -> Condition:
    key = storage_key(name)
    if isinstance(spec, list):
        return Match(key, kind, _values(name, kind, spec))
    if not isinstance(spec, dict):
        return Match(key, kind, _values(name, kind, [spec]))
    ops = set(spec)
    if ops == {"eq"} or ops == {"any"}:
        values = spec.get("any", [spec.get("eq")])
        return Match(key, kind, _values(name, kind, values if isinstance(values, list) else []))
    unknown = ops - set(RANGE_OPS)
    if not ops or unknown:
        raise InvalidInput(
            f"filter {name!r}: use a value, a list, or an object with eq, any, or range "
            f"operators {', '.join(RANGE_OPS)}; got {', '.join(sorted(ops)) or 'nothing'}"
        )
    if kind not in (*_NUMERIC, "datetime"):
        raise InvalidInput(f"filter {name!r}: ranges apply to numbers and dates; it holds {kind}")
    bounds = {op: _bound(name, kind, spec[op]) for op in ops}
    return Range(key, kind, **bounds)


def _values(name: str, kind: FieldType, values: list[Any]) -> tuple[Scalar, ...]:
    if not values:
        raise InvalidInput(f"filter {name!r}: the list of values is empty")
    checked: list[Scalar] = []
    for value in values:
        ok = (
            (kind == "bool" and isinstance(value, bool))
            or (kind in _NUMERIC and isinstance(value, int | float) and not isinstance(value, bool))
            or (kind in ("keyword", "datetime") and isinstance(value, str))
        )
        if not ok:
            raise InvalidInput(f"filter {name!r}: {value!r} is not a {kind} value")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidInput(f"filter {name!r}: {value} is out of the 64-bit integer range")
        _check_finite(name, value)
        checked.append(value)
    return tuple(checked)


def _bound(name: str, kind: FieldType, value: Any) -> float | datetime:
    if kind == "datetime":
        parsed = _parse_datetime(value)
        if parsed is None:
            raise InvalidInput(f"filter {name!r}: {value!r} is not an ISO 8601 date")
        return parsed
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"filter {name!r}: {value!r} is not a number")
    _check_finite(name, value)
    return value


def _check_finite(name: str, value: Scalar) -> None:
    """JSON parsers take NaN and Infinity literals, and no stored value equals or is bounded by
    them: refused, instead of a filter that silently matches nothing."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"filter {name!r}: {value} is not a finite number")

"""Filter parsing: the request JSON → typed conditions, or a 422-class error saying why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rag.errors import InvalidInput
from rag.filters import Match, Range, infer_type, merge_field_types, parse_filters

FIELDS = merge_field_types(
    {},
    {
        "team": "hr",
        "year": 2024,
        "score": 0.5,
        "draft": True,
        "published": "2024-05-01",
        "tags": ["a", "b"],
        "nested": {"x": 1},
    },
)


def test_types_are_inferred_and_widened() -> None:
    assert FIELDS == {
        "team": "keyword",
        "year": "integer",
        "score": "float",
        "draft": "bool",
        "published": "datetime",
        "tags": "keyword",
    }
    assert infer_type("2024-05-01T10:00:00Z") == "datetime"
    assert infer_type("2024") == "keyword"  # a bare year is text, not a date
    widened = merge_field_types(FIELDS, {"year": 2.5, "published": "soon", "draft": "no"})
    assert widened["year"] == "float"
    assert widened["published"] == widened["draft"] == "keyword"


def test_each_syntax_maps_to_a_condition() -> None:
    parsed = parse_filters(
        {
            "source": "a.pdf",
            "team": ["hr", "legal"],
            "tags": {"any": ["a"]},
            "year": {"eq": 2024},
            "page": {"gte": 2, "lt": 5},
            "published": {"gte": "2024-01-01"},
        },
        FIELDS,
    )
    assert parsed == [
        Match("source", "keyword", ("a.pdf",)),
        Match("meta.team", "keyword", ("hr", "legal")),
        Match("meta.tags", "keyword", ("a",)),
        Match("meta.year", "integer", (2024,)),
        Range("page", "integer", gte=2, lt=5),
        Range("meta.published", "datetime", gte=datetime(2024, 1, 1, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"colour": "red"}, "unknown filter field 'colour'; this collection has: document_id"),
        ({"team": {"gte": "a"}}, "ranges apply to numbers and dates; it holds keyword"),
        ({"year": {"gte": "x"}}, "'x' is not a number"),
        ({"year": "2024"}, "'2024' is not a integer value"),
        ({"published": {"lt": "last week"}}, "not an ISO 8601 date"),
        ({"team": []}, "the list of values is empty"),
        ({"team": {"like": "h%"}}, "use a value, a list, or an object with eq, any"),
        ({"team": {"x": {"y": 1}}}, "use a value, a list"),
        ({"draft": 1}, "is not a bool value"),
        ({"year": {"gte": float("nan")}}, "nan is not a finite number"),
        ({"score": {"lt": float("inf")}}, "inf is not a finite number"),
        ({"score": [0.5, float("-inf")]}, "-inf is not a finite number"),
    ],
)
def test_bad_filters_say_what_is_wrong(filters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        parse_filters(filters, FIELDS)

"""The data's sensitivity: the labels an operator gives collections (`RAG_PRIVACY__COLLECTIONS`,
e.g. `{"hr": "private"}`), carried to the router on the `RouteRequest`. A label only ever
raises a request's sensitivity: a policy cannot talk a private collection down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rag.generation.model_catalog import SENSITIVITY_RANK, Sensitivity
from rag.generation.router import RouteRequest


def data_sensitivity(
    labels: Mapping[str, Sensitivity], collections: str | Sequence[str]
) -> Sensitivity | None:
    """The most sensitive label among `collections`; None when none is labelled."""
    names = [collections] if isinstance(collections, str) else collections
    found: list[Sensitivity] = [labels[n] for n in names if n in labels]
    if not found:
        return None
    top: Sensitivity = max(found, key=lambda s: SENSITIVITY_RANK[s])
    return top


def labelled(
    route: RouteRequest | None,
    labels: Mapping[str, Sensitivity],
    collections: str | Sequence[str],
) -> RouteRequest | None:
    """`route` with the sensitivity of the collections it reads (unchanged when unlabelled)."""
    level = data_sensitivity(labels, collections)
    if level is None:
        return route
    return (route or RouteRequest()).model_copy(update={"sensitivity": level})

"""Latency percentiles shared by the evaluation reports."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel


class LatencyStats(BaseModel):
    p50_ms: float
    p95_ms: float
    mean_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_stats(values: Sequence[float]) -> LatencyStats:
    mean = sum(values) / len(values) if values else 0.0
    return LatencyStats(
        p50_ms=round(percentile(values, 0.50), 2),
        p95_ms=round(percentile(values, 0.95), 2),
        mean_ms=round(mean, 2),
    )

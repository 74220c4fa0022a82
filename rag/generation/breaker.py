"""A per-model circuit breaker that also honours Retry-After; the router keeps one per model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """closed → open after `failures` consecutive failures → after `cooldown_s` one probe
    (half-open) → closed if it succeeds, open again if not. A Retry-After also holds the model
    back for that long, whatever the state."""

    def __init__(
        self,
        *,
        failures: int,
        cooldown_s: float,
        clock: Clock,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        """`on_change` is told every state the breaker enters, the first (closed) included."""
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        if on_change is not None:
            on_change(self.state)
        self.consecutive = 0
        self._not_before = 0.0
        self._probing = False

    def acquire(self) -> tuple[str, str] | None:
        """None if a request may go to the model now, else (code, why it is skipped)."""
        with self._lock:
            now = self._clock()
            if now < self._not_before:
                wait = self._not_before - now
                if self.state is BreakerState.OPEN:
                    return "circuit_open", f"circuit open for another {wait:.1f} s"
                return "retry_after", f"asked to wait another {wait:.1f} s (Retry-After)"
            if self.state is BreakerState.OPEN:
                self._move(BreakerState.HALF_OPEN)
            if self.state is BreakerState.HALF_OPEN:
                if self._probing:
                    return "circuit_half_open", "circuit half-open: a probe is in flight"
                self._probing = True
            return None

    def success(self) -> None:
        with self._lock:
            self._move(BreakerState.CLOSED)
            self.consecutive = 0
            self._probing = False

    def failure(self, retry_after_s: float | None = None) -> None:
        with self._lock:
            now = self._clock()
            self.consecutive += 1
            if retry_after_s:
                self._not_before = max(self._not_before, now + retry_after_s)
            if self.state is BreakerState.HALF_OPEN or self.consecutive >= self.failures:
                self._move(BreakerState.OPEN)
                self._not_before = max(self._not_before, now + self.cooldown_s)
            self._probing = False

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def release(self) -> None:
        """The call ended without telling us anything about the model (e.g. it was cancelled)."""
        with self._lock:
            self._probing = False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            wait = max(self._not_before - self._clock(), 0.0)
            return {
                "state": self.state.value,
                "consecutive_failures": self.consecutive,
                "retry_in_s": round(wait, 3),
            }

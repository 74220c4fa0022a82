"""`RateLimiter` against the real Redis: bursts, refill, sharing across processes, atomicity,
and failing open when Redis is down."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rag.ratelimit import RateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"
DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"rag:test:ratelimit:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_limiter(prefix: str) -> Iterator[Callable[[], RateLimiter]]:
    limiters: list[RateLimiter] = []

    def make() -> RateLimiter:
        limiters.append(RateLimiter(REDIS_URL, prefix=prefix))
        return limiters[-1]

    yield make
    for limiter in limiters:
        limiter.close()


def test_a_full_bucket_allows_a_burst_then_says_when_to_retry(
    make_limiter: Callable[[], RateLimiter],
) -> None:
    limiter = make_limiter()
    assert [limiter.acquire("k", per_minute=60, burst=3) for _ in range(3)] == [0.0] * 3
    retry_after = limiter.acquire("k", per_minute=60, burst=3)
    assert 0.5 < retry_after <= 1.0 + 1e-6
    assert limiter.acquire("other", per_minute=60, burst=3) == 0.0  # buckets are separate


def test_tokens_refill_over_time(make_limiter: Callable[[], RateLimiter]) -> None:
    limiter = make_limiter()
    assert [limiter.acquire("k", per_minute=600, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert 0 < limiter.acquire("k", per_minute=600, burst=2) <= 0.1 + 1e-6
    time.sleep(0.25)  # 2.5 tokens' worth, capped at the burst of 2
    assert [limiter.acquire("k", per_minute=600, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("k", per_minute=600, burst=2) > 0


def test_processes_share_one_bucket(make_limiter: Callable[[], RateLimiter], prefix: str) -> None:
    first, second = make_limiter(), make_limiter()
    for limiter in (first, second, first, second):
        assert limiter.acquire("k", per_minute=0.001, burst=5) == 0.0
    code = (
        "import sys; from rag.ratelimit import RateLimiter; "
        "limiter = RateLimiter(sys.argv[1], prefix=sys.argv[2]); "
        "print(*(limiter.acquire('k', per_minute=0.001, burst=5) for _ in range(2)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    other = subprocess.run(
        [sys.executable, "-c", code, REDIS_URL, prefix],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=True,
    )
    taken, refused = map(float, other.stdout.split())
    assert taken == 0.0 and refused > 0  # the fifth token, then none left
    assert first.acquire("k", per_minute=0.001, burst=5) > 0
    assert second.acquire("k", per_minute=0.001, burst=5) > 0


def test_concurrent_callers_never_take_more_than_the_burst(
    make_limiter: Callable[[], RateLimiter],
) -> None:
    limiter = make_limiter()  # one instance: its lazily created client is shared by the threads
    start = threading.Barrier(8)
    results: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        start.wait()
        mine = [limiter.acquire("k", per_minute=0.001, burst=50) for _ in range(20)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160
    assert results.count(0.0) == 50


def test_fails_open_and_warns_once_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(DOWN_URL)
    with caplog.at_level(logging.WARNING, logger="rag.ratelimit"):
        began = time.monotonic()
        assert [limiter.acquire("k", per_minute=60, burst=1) for _ in range(5)] == [0.0] * 5
        assert time.monotonic() - began < 2
    warnings = [r for r in caplog.records if r.name == "rag.ratelimit"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    limiter.close()


def test_no_limit_never_touches_redis(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(DOWN_URL)  # would warn if it were called
    with caplog.at_level(logging.WARNING, logger="rag.ratelimit"):
        assert [limiter.acquire("k", per_minute=0, burst=1) for _ in range(100)] == [0.0] * 100
        assert limiter.acquire("k", per_minute=-1, burst=0) == 0.0
    assert not caplog.records
    limiter.close()

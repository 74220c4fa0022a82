"""A token-bucket rate limiter kept in Redis, so every API process shares the same buckets.

A bucket holds up to `burst` tokens and gains `per_minute / 60` per second; a request takes one
or is told how long until one is there. One Lua script reads, refills and writes the bucket
atomically, using the Redis server's clock, so processes with skewed clocks agree. Idle buckets
expire once they would be full again. If Redis fails, the limiter lets everything through.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

log = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: tokens per second, capacity. Returns the wait in seconds ("0": taken),
# as a string because Redis truncates Lua numbers to integers.
_SCRIPT = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
local ttl_ms = math.min(math.ceil((burst - tokens) / rate * 1000) + 1000, 2147483647000)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return tostring(wait)
"""

_WARN_EVERY_S = 60.0


class RateLimiter:
    """Token buckets named by key, shared through Redis; fails open when Redis does."""

    def __init__(
        self, redis_url: str, *, prefix: str = "rag:ratelimit:", timeout_s: float = 0.5
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._client: redis.Redis | None = None
        self._script: Script | None = None
        self._lock = threading.Lock()
        self._warned_at = float("-inf")

    def acquire(self, key: str, *, per_minute: float, burst: int) -> float:
        """Take one token from bucket `key` (refill `per_minute`/60 tokens per second, capacity
        `burst`). Returns 0.0 if allowed, else the seconds until one token will be available."""
        if per_minute <= 0:
            return 0.0
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        try:
            script = self._load()
            return float(script(keys=[self.prefix + key], args=[per_minute / 60.0, burst]))
        except redis.exceptions.RedisError as exc:
            self._warn(exc)
            return 0.0

    def close(self) -> None:
        with self._lock:
            client, self._client, self._script = self._client, None, None
        if client is not None:
            client.close()

    def _load(self) -> Script:
        with self._lock:
            if self._script is None:
                self._client = redis.Redis.from_url(
                    self.redis_url,
                    socket_timeout=self.timeout_s,
                    socket_connect_timeout=self.timeout_s,
                    retry=Retry(NoBackoff(), 0),  # fail open at once rather than retry
                )
                self._script = self._client.register_script(_SCRIPT)
            return self._script

    def _warn(self, exc: redis.exceptions.RedisError) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._warned_at < _WARN_EVERY_S:
                return
            self._warned_at = now
        log.warning("rate limiting is off, Redis failed: %s: %s", type(exc).__name__, exc)

"""Rate limits per key: submissions per second with a burst (a token bucket per key).

JOBCAST_RATE_LIMIT reads `<rate>/s` or `<rate>/s,burst=<n>` (burst defaults to the rate,
rounded up, at least 1); unset or `off`: no limit. Each gateway keeps its own buckets in
memory, so N gateways behind a balancer allow N times the rate: a limit against a runaway
client, not a quota (a bucket shared in PostgreSQL would cost a write per submission).
"""

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_SYNTAX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*s\s*(?:,\s*burst\s*=\s*(\d+)\s*)?$")

MAX_BUCKETS = 100_000
"""Buckets kept at once: keys are few (an operator makes each), but with auth off or a bug the
table must not grow without end; a full table forgets its fullest (idle) buckets first."""


@dataclass(frozen=True)
class RateLimit:
    """`rate` submissions per second, up to `burst` at once."""

    rate: float
    burst: int

    @classmethod
    def parse(cls, text: str | None) -> "RateLimit | None":
        """`20/s`, `0.5/s,burst=10`; None for unset, empty or `off`; ValueError otherwise."""
        if text is None or text.strip().lower() in ("", "off"):
            return None
        match = _SYNTAX.match(text)
        if match is None:
            raise ValueError(f"a rate limit reads like 20/s or 20/s,burst=40, not {text!r}")
        rate = float(match[1])
        burst = int(match[2]) if match[2] is not None else max(1, math.ceil(rate))
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit allows more than 0 per second and a burst of 1 or more")
        return cls(rate, burst)


class RateLimitedError(Exception):
    """A key submitted faster than JOBCAST_RATE_LIMIT allows (HTTP 429, Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many submissions for this API key; retry in {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket per key: `take` spends from it, or says how long until it could."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        limited: Callable[[], None] = lambda: None,
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._limited = limited
        self._buckets: dict[str | None, tuple[float, float]] = {}  # key: (tokens, when)

    def check(self, key: str | None, cost: int = 1) -> None:
        """`take`, raising RateLimitedError (and counting it) when `key` must wait."""
        wait = self.take(key, cost)
        if wait:
            self._limited()
            raise RateLimitedError(wait)

    def take(self, key: str | None, cost: int = 1) -> int:
        """Spend `cost` submissions of `key`'s bucket: 0 if it could, otherwise the whole
        seconds (at least 1) to wait before it can (nothing is spent then)."""
        limit, now = self._limit, self._clock()
        # NOTE: a batch larger than the burst passes on a full bucket rather than never.
        cost = min(cost, limit.burst)
        tokens, when = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - when) * limit.rate)
        if tokens >= cost:
            self._remember(key, tokens - cost, now)
            return 0
        self._remember(key, tokens, now)
        return max(1, math.ceil((cost - tokens) / limit.rate))

    def _remember(self, key: str | None, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._forget_full(now)
        self._buckets[key] = (tokens, now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again (they are as good as new)."""
        limit = self._limit
        for key, (tokens, when) in list(self._buckets.items()):
            if tokens + (now - when) * limit.rate >= limit.burst:
                del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.pop(next(iter(self._buckets)))  # oldest first: still bounded

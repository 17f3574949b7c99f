"""How many feeds (GET /jobs/stream) one API key may hold open at once on a gateway.

Every reply stored wakes every open feed, and each then reads the ledger: one key holding
thousands of feeds (all JOBCAST_HTTP_MAX_CONNECTIONS allows) multiplies the gateway's work per
reply by as many. A feed follows every job its key may see, so one or two are all a client
needs (a dashboard tab holds one); the next is refused (429) until one closes. Feeds are
counted per API key (a read token may not open one); with JOBCAST_AUTH=off there is no key to
count by, and the connection limit alone bounds them. A job's own stream
(GET /messages/{offset}/stream) is woken by its job only and is not counted.
"""

import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from contracts.principals import Principal

T = TypeVar("T")

DEFAULT_FEEDS_PER_KEY = 32
"""A dashboard tab holds one feed, a service following its jobs one or two."""


class TooManyFeedsError(Exception):
    """An API key asked for one feed more than JOBCAST_MAX_FEEDS_PER_KEY (HTTP 429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many open feeds for this key: at most {limit} at once"
            " (JOBCAST_MAX_FEEDS_PER_KEY); close one first. One feed follows every job."
        )


class FeedSlots:
    """The feeds each API key holds open on this gateway, at most `per_key` each."""

    def __init__(self, per_key: int = DEFAULT_FEEDS_PER_KEY) -> None:
        self.per_key = per_key
        self._open: Counter[str] = Counter()

    def open_for(self, principal: Principal) -> int:
        """How many feeds `principal`'s key holds open."""
        return 0 if principal.name is None else self._open[principal.name]

    def hold(self, principal: Principal, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """`events`, holding one of `principal`'s feeds until they end (or are dropped);
        TooManyFeedsError, holding nothing, if it holds `per_key` already."""
        holder = principal.name
        if holder is None:  # JOBCAST_AUTH=off: everyone is the same nobody
            return events
        if self._open[holder] >= self.per_key:
            raise TooManyFeedsError(self.per_key)
        self._open[holder] += 1
        release = _once(lambda: self._release(holder))
        held = _released_at_end(events, release)
        # NOTE: a stream never iterated (the client gone before its first byte) runs no
        # `finally`: its slot comes back when the generator is collected.
        weakref.finalize(held, release)
        return held

    def _release(self, holder: str) -> None:
        self._open[holder] -= 1
        if self._open[holder] <= 0:
            del self._open[holder]


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


async def _released_at_end(
    events: AsyncIterator[T], release: Callable[[], None]
) -> AsyncIterator[T]:
    try:
        async for event in events:
            yield event
    finally:
        release()

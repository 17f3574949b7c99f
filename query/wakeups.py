"""Waking whoever follows a job when one of its replies is stored."""

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Watch:
    """One follower's doorbell for one offset."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def arm(self) -> None:
        """Call before reading the ledger: a reply stored after this rings the bell."""
        self._event.clear()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for the bell (or `timeout`, None: for ever); True if it rang."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True

    def ring(self) -> None:
        self._event.set()


class ReplyHub:
    """Per-offset wake-ups for the long polls and streams of this gateway.

    Followers arm, read the ledger, then wait with no timer: an idle follower costs nothing
    until it is rung. The recorder rings after each commit (`notify`); on PostgreSQL the
    listener (ledger/notifications.py) also rings for replies any other gateway stored, and
    rings everything (`ring_all`) when it (re)connects, for what it could not hear meanwhile.
    """

    def __init__(self) -> None:
        self._watches: dict[int, set[Watch]] = defaultdict(set)
        self._any: set[Watch] = set()

    def notify(self, offset: int) -> None:
        """A reply of `offset` was stored."""
        for watch in self._watches.get(offset, ()):
            watch.ring()
        for watch in self._any:
            watch.ring()

    def ring_all(self) -> None:
        """Every follower re-reads once: replies may have been stored unheard."""
        for watches in self._watches.values():
            for watch in watches:
                watch.ring()
        for watch in self._any:
            watch.ring()

    @contextmanager
    def watch(self, offset: int) -> Iterator[Watch]:
        """Follow `offset` for the duration of the block."""
        watch = Watch()
        self._watches[offset].add(watch)
        try:
            yield watch
        finally:
            watches = self._watches[offset]
            watches.discard(watch)
            if not watches:
                del self._watches[offset]

    @contextmanager
    def watch_any(self) -> Iterator[Watch]:
        """Be rung for a reply of any offset, for the duration of the block (the feed)."""
        watch = Watch()
        self._any.add(watch)
        try:
            yield watch
        finally:
            self._any.discard(watch)

    @property
    def followers(self) -> int:
        """How many followers are waiting, over all offsets and on the feed."""
        return sum(len(w) for w in self._watches.values()) + len(self._any)

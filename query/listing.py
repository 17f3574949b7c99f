"""The jobs list, the feed of many jobs and the fleet figures: the plain code behind
GET /jobs, GET /jobs/stream and GET /stats."""

import base64
import binascii
import re
from collections.abc import AsyncGenerator, Awaitable, Callable

from contracts import Reply
from contracts.listing import JobFilter, JobPage, QueueFigures, Stats
from contracts.messages import MAX_OFFSET
from ledger import Ledger
from query.wakeups import ReplyHub

FEED_BATCH = 500
"""Replies read from the ledger at once while a feed catches up."""

_CURSOR = re.compile(r"before:(\d{1,19})")


class InvalidCursorError(ValueError):
    """A `cursor` that GET /jobs did not hand out (altered, truncated, or from elsewhere)."""


def page_cursor(offset: int) -> str:
    """The opaque cursor of the page after the one that ends at `offset`."""
    return base64.urlsafe_b64encode(f"before:{offset}".encode()).decode().rstrip("=")


def read_cursor(cursor: str) -> int:
    """The offset a cursor continues below; InvalidCursorError for anything not handed out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursorError("not a cursor this API handed out") from exc
    found = _CURSOR.fullmatch(text)
    if found is None or page_cursor(int(found[1])) != cursor or int(found[1]) > MAX_OFFSET:
        raise InvalidCursorError("not a cursor this API handed out")
    return int(found[1])


QueueReader = Callable[[], Awaitable[QueueFigures]]
"""Reads the job and dead-letter queues' figures (messaging/queue_figures.py)."""


class Listing:
    """Lists jobs, follows the replies of many, and counts them, from the ledger."""

    def __init__(self, ledger: Ledger, hub: ReplyHub, queues: QueueReader) -> None:
        self._ledger = ledger
        self._hub = hub
        self._queues = queues

    async def page(self, found: JobFilter, limit: int, cursor: str | None) -> JobPage:
        """Up to `limit` jobs, newest first, after `cursor`'s page (None: the newest)."""
        before = None if cursor is None else read_cursor(cursor)
        rows = await self._ledger.list_jobs(found, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(jobs=rows, next=page_cursor(rows[-1].offset) if more else None)

    async def end(self) -> int:
        """The feed's cursor now: following after it gives only what is recorded from now on."""
        return await self._ledger.feed_end()

    async def follow(self, found: JobFilter, after: int) -> AsyncGenerator[tuple[int, Reply], None]:
        """Every reply of the jobs `found` names with a feed cursor above `after`, in cursor
        order, history first, then live, for ever (close the iterator to stop).

        No timer: one ledger read per wake-up, rung by any reply stored (ReplyHub.watch_any).
        """
        with self._hub.watch_any() as watch:
            while True:
                watch.arm()
                batch = await self._ledger.feed(found, after, FEED_BATCH)
                for cursor, reply in batch:
                    yield cursor, reply
                    after = cursor
                if len(batch) < FEED_BATCH:
                    # NOTE: rung by anything stored since arm(), whether that read saw it or not
                    await watch.wait()

    async def stats(self, minutes: int) -> Stats:
        """The ledger's counts over the last `minutes` and the queues' figures now."""
        counts, per_minute = await self._ledger.stats(minutes)
        queues = await self._queues()
        return Stats(
            **queues.model_dump(),
            minutes=minutes,
            counts=counts,
            throughput_per_second=per_minute[-1] / 60,
            completed_per_minute=per_minute,
        )

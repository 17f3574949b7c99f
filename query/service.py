"""Reading results: the plain code behind GET /messages and GET /jobs."""

import asyncio
from collections.abc import AsyncIterator

from pydantic import JsonValue

from contracts import JobRecord, Reply
from ledger import Ledger
from query.live import ReplyHub

REREAD_SECONDS = 1.0
"""How often a follower re-reads the ledger even without a wake-up (replies stored elsewhere)."""


class Results:
    """What the query side answers, from the ledger, live."""

    def __init__(self, ledger: Ledger, hub: ReplyHub) -> None:
        self.ledger = ledger
        self.hub = hub

    async def messages(self, offset: int) -> list[JsonValue]:
        """The values so far, in step order; UnknownOffsetError for an offset never handed out."""
        return [reply.value for reply in await self.ledger.replies(offset)]

    async def job(self, offset: int) -> JobRecord:
        """State, request, replies and timestamps of one job."""
        return await self.ledger.job(offset)

    async def wait_for(self, offset: int, after_seq: int, timeout: float) -> list[Reply]:
        """Replies newer than `after_seq`, waiting up to `timeout` for the first of them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self.hub.watch(offset) as watch:
            while True:
                watch.arm()
                newer = await self.ledger.replies(offset, after_seq)
                remaining = deadline - loop.time()
                if newer or remaining <= 0:
                    return newer
                await watch.wait(min(remaining, REREAD_SECONDS))

    async def follow(self, offset: int, after_seq: int = -1) -> AsyncIterator[Reply]:
        """Every reply after `after_seq`, history first, then live, until the final one."""
        while True:
            for reply in await self.wait_for(offset, after_seq, timeout=REREAD_SECONDS * 15):
                yield reply
                after_seq = reply.seq
                if reply.is_final:
                    return

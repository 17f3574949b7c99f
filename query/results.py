"""Reading results: the plain code behind GET /messages and GET /jobs."""

import asyncio
from collections.abc import AsyncGenerator

from pydantic import JsonValue

from contracts import JobRecord, Reply, ReplyKind
from ledger import Ledger
from query.wakeups import ReplyHub


class Results:
    """What the query side answers, from the ledger, live.

    The ledger shows a job's replies only up to its first missing seq (a reply recorded ahead
    of one still on its way, by this gateway or another, waits), so every list here is a
    prefix of the final one and a follower waits for the next seq rather than skip it.
    """

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
                await watch.wait(remaining)

    async def progress(self, offset: int) -> Reply | None:
        """The job's latest `progress` reply, if a step reported any."""
        return await self.ledger.progress(offset)

    async def follow(
        self, offset: int, after_seq: int = -1, shown: Reply | None = None
    ) -> AsyncGenerator[Reply, None]:
        """Every reply after `after_seq`, history first, then live, until the final one; and
        the job's latest progress whenever it is news (newer than `shown`, the last one given),
        just before its step's result.

        No timer: one read of the ledger per wake-up (replies and progress in one statement),
        none while nothing is stored. Close (or cancel) the iterator when its reader goes: its
        watch goes with it.
        """
        with self.hub.watch(offset) as watch:
            woken = False
            while True:
                watch.arm()
                found = await self.ledger.replies(offset, after_seq, with_progress=True)
                if woken and not found and (await self.ledger.job(offset)).state.is_final:
                    # NOTE: rung, nothing after `after_seq`, and ended. Read again: the job
                    # may have ended between the two reads (its last replies stored by
                    # another gateway, in the transaction that ended it). Still nothing: it
                    # ended at or before `after_seq` (a follower resumed past the end).
                    found = await self.ledger.replies(offset, after_seq, with_progress=True)
                    if not found:
                        return
                replies = [reply for reply in found if reply.kind is not ReplyKind.PROGRESS]
                latest = next((r for r in found if r.kind is ReplyKind.PROGRESS), None)
                for reply in with_progress(replies, latest, after_seq, shown):
                    yield reply
                    if reply.kind is ReplyKind.PROGRESS:
                        shown = reply
                        continue
                    after_seq = reply.seq
                    if reply.is_final:
                        return
                # NOTE: rung by anything stored since arm(), whether that read saw it or not
                await watch.wait()
                woken = True


def with_progress(
    replies: list[Reply], latest: Reply | None, after_seq: int, shown: Reply | None
) -> list[Reply]:
    """`replies` (those after `after_seq`) with `latest`, the job's kept progress, put just
    before its step's result, if it is news: for a step not yet shown done, newer than `shown`."""
    if latest is None or latest.seq <= after_seq:
        return replies
    if shown is not None and (latest.seq, latest.produced_at) <= (shown.seq, shown.produced_at):
        return replies
    at = next((i for i, reply in enumerate(replies) if reply.seq >= latest.seq), len(replies))
    return [*replies[:at], latest, *replies[at:]]

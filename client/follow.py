"""Joining a job's history with its live replies: no gap, no duplicate."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from contracts import Reply

logger = logging.getLogger(__name__)

History = Callable[[int], Awaitable[list[Reply]]]
"""The recorded replies with seq greater than the argument, in order."""

GAP_SECONDS = 30.0
"""How long a live reply may wait for the ledger to record the ones before it."""


async def merge(
    history: History,
    live: "asyncio.Queue[Reply]",
    after: int = -1,
    gap_seconds: float = GAP_SECONDS,
) -> AsyncIterator[Reply]:
    """Replies after `after`: history first, then live, until the final one.

    `live` must be subscribed before `history` is read: then every reply is in one or the
    other (or both: seqs already seen are dropped). A live reply that overtakes the ledger
    (seq more than one past the last seen) waits until the ledger has the ones in between.
    """
    last = after
    for reply in await history(last):
        yield reply
        last = reply.seq
        if reply.is_final:
            return
    while True:
        reply = await live.get()
        if reply.seq <= last:
            continue  # a copy: already in the history, or a redelivered job's repeat
        if reply.seq > last + 1:
            for missing in await _fill(history, last, reply.seq, gap_seconds):
                yield missing
                last = missing.seq
        yield reply
        last = reply.seq
        if reply.is_final:
            return


async def _fill(history: History, last: int, upto: int, gap_seconds: float) -> list[Reply]:
    """The recorded replies after `last` and before `upto`, waiting for the ledger to catch up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + gap_seconds
    while True:
        found = [r for r in await history(last) if r.seq < upto]
        if (found and found[-1].seq == upto - 1) or loop.time() > deadline:
            if not found or found[-1].seq != upto - 1:
                logger.warning("replies %s..%s never recorded; going on", last + 1, upto - 1)
            return found
        await asyncio.sleep(0.1)

"""Joining a job's history with its live replies: no gap, no duplicate."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from contracts import Reply, ReplyKind

logger = logging.getLogger(__name__)

History = Callable[[int], Awaitable[list[Reply]]]
"""The recorded replies with seq greater than the argument, in order."""

REREAD_SECONDS = 2.0
"""How often the history is read again while nothing arrives live.

A reply published after the subscription arrives live; one published before it reaches the
ledger a moment later. Reading again is how the second kind, the final reply above all, is
never waited for in vain.
"""

GAP_POLL_SECONDS = 0.1
GAP_SECONDS = 30.0
"""How long a live reply may wait for the ledger to record the ones before it."""


async def merge(
    history: History,
    live: "asyncio.Queue[Reply]",
    after: int = -1,
    *,
    reread_seconds: float = REREAD_SECONDS,
    gap_seconds: float = GAP_SECONDS,
) -> AsyncIterator[Reply]:
    """Replies after `after`, in seq order, each once, until the final one.

    `live` must be subscribed before `history` is first read: then every reply is in one or
    the other (or both: seqs already seen are dropped). A live reply that overtakes the ledger
    waits until the ledger has the ones before it. A live `progress` reply is given once every
    step before its own is, if it is newer than the last one given; never after its step's
    result.
    """
    loop = asyncio.get_running_loop()
    last = after
    ahead: dict[int, Reply] = {}
    tick: Reply | None = None
    """The newest progress not given yet."""
    given: tuple[int, datetime] | None = None
    """(seq, produced_at) of the last progress given."""
    gap_since: float | None = None
    # NOTE: the history is read from the last seq already seen, inclusive: if that one is the
    # final reply, the job ended where the caller stands and nothing more will ever come.
    incoming = await history(last - 1)
    while True:
        for reply in incoming:
            if reply.kind is ReplyKind.PROGRESS:
                if _newer(reply, tick, given):
                    tick = reply
            elif reply.seq > last:
                ahead.setdefault(reply.seq, reply)
            elif reply.seq == last and reply.is_final:
                return
        while True:
            if tick is not None and tick.seq <= last:
                tick = None  # its step's result was given: old news
            if tick is not None and tick.seq == last + 1:  # every step before its own given
                shown, tick = tick, None
                given = (shown.seq, shown.produced_at)
                yield shown
            if last + 1 not in ahead:
                break
            reply = ahead.pop(last + 1)
            last = reply.seq
            yield reply
            if reply.is_final:
                return
        if not ahead:
            gap_since = None
            try:
                async with asyncio.timeout(reread_seconds):
                    incoming = [await live.get()]
            except TimeoutError:
                incoming = await history(last - 1)
            continue
        # a live reply overtook the ledger: wait for it to record the ones in between
        gap_since = gap_since or loop.time()
        if loop.time() - gap_since > gap_seconds:
            first = min(ahead)
            logger.warning("replies %s..%s never recorded; going on", last + 1, first - 1)
            last = first - 1
            incoming = []
            continue
        await asyncio.sleep(GAP_POLL_SECONDS)
        incoming = await history(last - 1) + _drain(live)


def _drain(live: "asyncio.Queue[Reply]") -> list[Reply]:
    found = []
    while not live.empty():
        found.append(live.get_nowait())
    return found


def _newer(reply: Reply, tick: Reply | None, given: tuple[int, datetime] | None) -> bool:
    """True if progress `reply` is newer than the one held and the last one given."""
    key = (reply.seq, reply.produced_at)
    held = None if tick is None else (tick.seq, tick.produced_at)
    return all(other is None or key > other for other in (held, given))

"""The feed of many jobs (GET /jobs/stream) across gateways on PostgreSQL: a follower on one
gateway gets every reply any gateway stores, each once, with no gap, also across reconnects,
and also when two gateways commit in the opposite order from the one they began in."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts import JobRequest, Reply, ReplyKind
from contracts.listing import JobFilter, QueueFigures
from ledger.postgres import PostgresLedger
from query.listing import Listing
from query.wakeups import ReplyHub
from tests.support.waiting import eventually

JOB = JobRequest(deployment="feed", framework="tests", fn="counted")


def reply(offset: int, seq: int, kind: ReplyKind = ReplyKind.RESULT) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=f"s{seq}")


async def no_queues() -> QueueFigures:
    return QueueFigures(jobs_waiting=0, workers=0, dead_letters=0)


@pytest.fixture
async def gateways(
    postgres_url: str,
) -> AsyncIterator[tuple[PostgresLedger, PostgresLedger, Listing]]:
    """Gateways A's and B's ledgers, and B's Listing woken by PostgreSQL's notifications."""
    a, b = PostgresLedger(postgres_url), PostgresLedger(postgres_url)
    await a.open()
    await b.open()
    hub = ReplyHub()
    listener = b.reply_listener(hub.notify, hub.ring_all)
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        yield a, b, Listing(b, hub, no_queues)
    finally:
        await listener.stop()
        await a.close()
        await b.close()


async def take(feed: AsyncIterator[tuple[int, Reply]], count: int) -> list[tuple[int, Reply]]:
    return [await asyncio.wait_for(anext(feed), 10) for _ in range(count)]


async def test_a_follower_on_b_gets_every_reply_stored_on_a_and_b_once_across_reconnects(
    gateways: tuple[PostgresLedger, PostgresLedger, Listing],
):
    a, b, listing = gateways
    offsets = [(await a.create_job(JOB))[0] for _ in range(10)]
    start = await listing.end()

    async def run(offset: int, through: PostgresLedger) -> None:
        for seq in range(4):
            await through.store_replies([reply(offset, seq)])
        await through.store_replies([reply(offset, 4, ReplyKind.DONE)])

    storing = asyncio.gather(*(run(o, a if o % 2 else b) for o in offsets))
    seen: list[tuple[int, Reply]] = []
    after = start
    # the follower drops its connection every 7 replies and resumes from the last cursor
    while len(seen) < 50:
        async with contextlib.aclosing(listing.follow(JobFilter(), after)) as feed:
            for cursor, stored in await take(feed, min(7, 50 - len(seen))):
                seen.append((cursor, stored))
                after = cursor
    await storing
    cursors = [cursor for cursor, _ in seen]
    assert cursors == list(range(start + 1, start + 51))  # no gap, no repeat
    for offset in offsets:
        assert [r.seq for _, r in seen if r.offset == offset] == [0, 1, 2, 3, 4]


async def test_a_store_that_commits_later_never_slips_below_a_cursor_already_read(
    gateways: tuple[PostgresLedger, PostgresLedger, Listing], postgres_url: str
):
    a, b, listing = gateways
    x, _ = await a.create_job(JOB)
    y, _ = await a.create_job(JOB)
    z, _ = await a.create_job(JOB)
    async with contextlib.aclosing(listing.follow(JobFilter(), await listing.end())) as feed:
        # gateway A begins storing x and y first, but is held on y's row (a slow transaction)
        blocker = await asyncpg.connect(postgres_url)
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute("SELECT 1 FROM jobcast_jobs WHERE id = $1 FOR UPDATE", y)
        slow = asyncio.create_task(a.store_replies([reply(x, 0), reply(y, 0)]))
        # A has taken x's row, stored its reply, and waits for y's row
        await eventually(
            lambda: blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ),
            until=lambda waiting: waiting == 1,
            what="gateway A waiting for y's row",
        )
        assert not slow.done()
        # meanwhile gateway B stores z and commits: the follower reads it ...
        await b.store_replies([reply(z, 0)])
        [(first_cursor, first)] = await take(feed, 1)
        assert first.offset == z
        # ... then A commits: its replies must come after, not below the cursor already read
        await holding.rollback()
        await blocker.close()
        await asyncio.wait_for(slow, 10)
        later = await take(feed, 2)
    assert {r.offset for _, r in later} == {x, y}
    assert [cursor for cursor, _ in later] == [first_cursor + 1, first_cursor + 2]

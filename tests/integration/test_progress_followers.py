"""Followers see progress as it is kept, woken like for a stored reply: on both ledgers, over
SSE, and on PostgreSQL on another gateway than the one that kept it."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from contracts import JobRequest, Reply, ReplyKind
from contracts.messages import utcnow
from jobcast.http.errors import install_error_handlers
from ledger import Ledger
from ledger.postgres import PostgresLedger
from query import sse as query_sse
from query.results import Results
from query.wakeups import ReplyHub
from tests.e2e.sse import read_events
from tests.support.waiting import eventually

JOB = JobRequest(deployment="progress", framework="tests", fn="counted")
T0 = utcnow()


def result(offset: int, seq: int, kind: ReplyKind = ReplyKind.RESULT) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=f"s{seq}")


def tick(offset: int, seq: int, current: int) -> Reply:
    return Reply(
        offset=offset,
        seq=seq,
        kind=ReplyKind.PROGRESS,
        value={"current": current, "total": 10, "message": None},
        produced_at=T0 + timedelta(seconds=seq * 100 + current),
    )


def label(reply: Reply) -> str:
    if reply.kind is ReplyKind.PROGRESS:
        return f"{reply.seq}:{reply.value['current']}"  # type: ignore[call-overload,index]
    return f"{reply.seq}"


async def store(results: Results, *replies: Reply) -> None:
    """What the recorder does: commit, then ring the followers of each offset."""
    await results.ledger.store_replies(replies)
    for stored in replies:
        results.hub.notify(stored.offset)


@pytest.fixture
async def results(ledger: Ledger) -> Results:
    return Results(ledger, ReplyHub())


async def test_a_follower_gets_each_kept_tick_in_order_then_the_result(results: Results):
    offset, _ = await results.ledger.create_job(JOB)
    follower = results.follow(offset)
    seen: list[str] = []
    for current in (1, 2, 3):
        await store(results, tick(offset, 0, current))
        seen.append(label(await asyncio.wait_for(anext(follower), 5)))
    await store(results, tick(offset, 0, 2))  # older than the one shown: not kept, not shown
    await store(results, tick(offset, 0, 10), result(offset, 0))  # one commit, one wake-up
    await store(results, result(offset, 1, ReplyKind.DONE))
    seen += [label(reply) async for reply in follower]
    assert seen == ["0:1", "0:2", "0:3", "0:10", "0", "1"]


async def test_sse_joined_mid_step_starts_with_the_latest_tick(results: Results):
    offset, _ = await results.ledger.create_job(JOB)
    await store(results, result(offset, 0), tick(offset, 1, 4))
    app = FastAPI()
    app.include_router(query_sse.router(results))
    install_error_handlers(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
        reading = asyncio.ensure_future(read_events(http, f"/messages/{offset}/stream?after=0"))
        await asyncio.wait_for(_followers(results, 1), 5)
        await store(results, tick(offset, 1, 9))
        await store(results, result(offset, 1), result(offset, 2, ReplyKind.DONE))
        events = await asyncio.wait_for(reading, 10)
    assert (events[0].id, events[0].event) == ("", "progress")
    assert [(e.id, e.event) for e in events][-2:] == [("1", "result"), ("2", "done")]
    currents = [e.data["value"]["current"] for e in events if e.event == "progress"]  # type: ignore[index]
    assert currents[0] == 4
    assert currents[-1] == 9
    assert currents == sorted(currents)


async def _followers(results: Results, n: int) -> None:
    async def count() -> int:
        return results.hub.followers

    await eventually(count, until=lambda found: found >= n, what=f"{n} follower(s) waiting")


async def test_a_tick_kept_through_gateway_a_reaches_a_follower_on_gateway_b(postgres_url: str):
    a, b = PostgresLedger(postgres_url), PostgresLedger(postgres_url)
    await a.open()
    await b.open()
    on_b = Results(b, ReplyHub())
    listener = b.reply_listener(on_b.hub.notify, on_b.hub.ring_all)
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        offset, _ = await a.create_job(JOB)
        follower = on_b.follow(offset)
        waiting = asyncio.ensure_future(anext(follower))
        await asyncio.wait_for(_followers(on_b, 1), 5)
        # kept through A only: B hears of it from PostgreSQL alone
        await a.store_replies([tick(offset, 0, 7)])
        assert label(await asyncio.wait_for(waiting, 5)) == "0:7"
        await follower.aclose()
    finally:
        await listener.stop()
        await a.close()
        await b.close()

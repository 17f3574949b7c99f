"""Followers never skip a reply (issue 9, item 3) and are woken by stored replies, on any
gateway, rather than by timers (item 4): on both ledgers, through the HTTP routes."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI

from contracts import JobRequest, Reply, ReplyKind
from jobcast.http.errors import install_error_handlers
from ledger import Ledger
from ledger.postgres import PostgresLedger
from query import http as query_http
from query import sse as query_sse
from query.results import Results
from query.wakeups import ReplyHub
from tests.support.waiting import eventually

JOB = JobRequest(deployment="followers", framework="tests", fn="counted")


def reply(offset: int, seq: int, kind: ReplyKind = ReplyKind.RESULT) -> Reply:
    value = f"s{seq}" if kind is ReplyKind.RESULT else kind.value
    return Reply(offset=offset, seq=seq, kind=kind, value=value)


async def store(results: Results, *replies: Reply) -> None:
    """What the recorder does: commit, then ring the followers of each offset."""
    await results.ledger.store_replies(replies)
    for stored in replies:
        results.hub.notify(stored.offset)


@pytest.fixture
async def results(ledger: Ledger) -> Results:
    return Results(ledger, ReplyHub())


@pytest.fixture
async def http(results: Results) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(query_http.router(results))
    app.include_router(query_sse.router(results))
    install_error_handlers(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
        yield client


@pytest.fixture
async def holed(results: Results) -> int:
    """A job whose seqs 0, 1 and 3 (`done`) are stored, and 2 is still on its way."""
    offset, _ = await results.ledger.create_job(JOB)
    await store(results, reply(offset, 0), reply(offset, 1))
    await store(results, reply(offset, 3, ReplyKind.DONE))
    return offset


async def following(results: Results, count: int) -> None:
    await eventually(
        lambda: _value(results.hub.followers), until=lambda n: n == count, what="followers"
    )


async def _value(value: int) -> int:
    return value


def events(body: str) -> list[dict[str, Any]]:
    """The `data` of every SSE event in `body`."""
    return [
        orjson.loads(line.removeprefix("data: "))
        for line in body.splitlines()
        if line.startswith("data: ")
    ]


async def test_lists_and_the_job_show_only_the_replies_before_the_first_missing_one(
    http: httpx.AsyncClient, results: Results, holed: int
):
    assert (await http.get(f"/messages/{holed}")).json() == ["s0", "s1"]
    job = (await http.get(f"/jobs/{holed}")).json()
    # the final reply is not part of what can be shown yet, so neither is the end
    assert (job["state"], [r["seq"] for r in job["replies"]]) == ("running", [0, 1])

    await store(results, reply(holed, 2))
    assert (await http.get(f"/messages/{holed}")).json() == ["s0", "s1", "s2", "done"]
    job = (await http.get(f"/jobs/{holed}")).json()
    assert (job["state"], [r["seq"] for r in job["replies"]]) == ("done", [0, 1, 2, 3])


async def test_the_long_poll_waits_for_the_missing_seq_then_answers_the_whole_list(
    http: httpx.AsyncClient, results: Results, holed: int
):
    polling = asyncio.create_task(http.get(f"/messages/{holed}", params={"wait": 10, "after": 1}))
    await following(results, 1)
    assert not polling.done()
    await store(results, reply(holed, 2))
    answer = await asyncio.wait_for(polling, 5)
    assert answer.json() == ["s0", "s1", "s2", "done"]


async def test_the_stream_waits_for_the_missing_seq_and_ends_on_done_only_after_it(
    http: httpx.AsyncClient, results: Results, holed: int
):
    streaming = asyncio.create_task(http.get(f"/messages/{holed}/stream"))
    await following(results, 1)
    assert not streaming.done()
    await store(results, reply(holed, 2))
    body = (await asyncio.wait_for(streaming, 5)).text
    assert [(e["seq"], e["value"]) for e in events(body)] == [
        (0, "s0"),
        (1, "s1"),
        (2, "s2"),
        (3, "done"),
    ]
    await following(results, 0)


async def test_a_follower_gets_the_missing_seq_once_stored_then_the_rest_then_ends(
    results: Results, holed: int
):
    follower = results.follow(holed)
    assert [(await anext(follower)).seq for _ in range(2)] == [0, 1]
    pending = asyncio.ensure_future(anext(follower))
    await following(results, 1)
    assert not pending.done()  # seq 3 is stored, but 2 is not: it waits
    await store(results, reply(holed, 2))
    assert (await asyncio.wait_for(pending, 5)).seq == 2
    assert (await anext(follower)).kind is ReplyKind.DONE
    with pytest.raises(StopAsyncIteration):
        await anext(follower)
    await following(results, 0)


# -- PostgreSQL: a reply stored through one gateway wakes followers on another ------------


class CountedReads:
    """Counts a ledger's `replies` reads (every follower wake-up is one)."""

    def __init__(self, ledger: Ledger) -> None:
        self.count = 0
        read: Callable[..., Awaitable[list[Reply]]] = ledger.replies

        async def counted(*args: Any, **kwargs: Any) -> list[Reply]:
            self.count += 1
            return await read(*args, **kwargs)

        ledger.replies = counted  # type: ignore[method-assign]


@pytest.fixture
async def two_gateways(postgres_url: str) -> AsyncIterator[tuple[PostgresLedger, Results]]:
    """Gateway A's ledger, and gateway B's Results with its hub listening to PostgreSQL."""
    a, b = PostgresLedger(postgres_url), PostgresLedger(postgres_url)
    await a.open()
    await b.open()
    results_b = Results(b, ReplyHub())
    listener = b.reply_listener(results_b.hub.notify, results_b.hub.ring_all)
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        yield a, results_b
    finally:
        await listener.stop()
        await a.close()
        await b.close()


async def test_a_reply_stored_on_gateway_a_wakes_a_follower_on_gateway_b_at_once(
    two_gateways: tuple[PostgresLedger, Results],
):
    a, b = two_gateways
    reads = CountedReads(b.ledger)
    offset, _ = await a.create_job(JOB)
    follower = b.follow(offset)
    for seq in range(3):
        next_reply = asyncio.ensure_future(anext(follower))
        await following(b, 1)
        started = time.monotonic()
        # stored through A only: nothing in B's process is told but by PostgreSQL
        await a.store_replies([reply(offset, seq)])
        assert (await asyncio.wait_for(next_reply, 5)).seq == seq
        assert time.monotonic() - started < 0.2
    # one read to start and one per reply: no follower re-reads on a timer
    assert reads.count <= 1 + 3
    await follower.aclose()
    await following(b, 0)


async def test_replies_stored_while_the_listener_was_down_reach_followers_after_it_is_back(
    two_gateways: tuple[PostgresLedger, Results], postgres_url: str
):
    a, b = two_gateways
    offset, _ = await a.create_job(JOB)
    follower = b.follow(offset)
    first = asyncio.ensure_future(anext(follower))
    await following(b, 1)
    # PostgreSQL drops the listening connection (a restart, a failover, a network cut) ...
    admin = await asyncpg.connect(postgres_url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    finally:
        await admin.close()
    assert killed == 1
    # ... and a reply is stored meanwhile: whenever the listener hears it or not, the follower
    # gets it once the listener is back (it rings every follower when it reconnects)
    await a.store_replies([reply(offset, 0)])
    assert (await asyncio.wait_for(first, 10)).seq == 0
    await follower.aclose()


async def test_a_stream_resumed_past_the_jobs_end_ends_with_the_job(
    http: httpx.AsyncClient, results: Results
):
    # Found by review: a stream asked to start after a seq the job never reaches (a forged or
    # stale Last-Event-ID, `?after=` too large) waited for a reply past it for ever, the job
    # long ended, holding its connection and its watch
    offset, _ = await results.ledger.create_job(JOB)
    await store(results, reply(offset, 0))
    streaming = asyncio.create_task(
        http.get(f"/messages/{offset}/stream", headers={"Last-Event-ID": "7"})
    )
    await following(results, 1)
    await store(results, reply(offset, 1))
    await store(results, reply(offset, 2, ReplyKind.DONE))
    body = (await asyncio.wait_for(streaming, 5)).text
    assert events(body) == []  # nothing after seq 7, and the job has ended
    await following(results, 0)

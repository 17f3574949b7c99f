"""Progress in the ledger, on SQLite and PostgreSQL alike: only the latest per job is kept,
shown by job() and progress(), never among the replies, never after the job's end."""

import asyncio
from datetime import timedelta

from contracts import JobRequest, ProgressReport, Reply, ReplyKind
from contracts.messages import utcnow
from ledger import StoreOutcome
from ledger.postgres import PostgresLedger

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def result(offset: int, seq: int, kind: str = "result") -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=f"result{seq + 1}")


def tick(
    offset: int, seq: int, current: int, *, later: float = 0, message: str | None = None
) -> Reply:
    return Reply(
        offset=offset,
        seq=seq,
        kind=ReplyKind.PROGRESS,
        value={"current": current, "total": 100, "message": message},
        produced_at=utcnow() + timedelta(seconds=later),
    )


async def test_the_latest_tick_is_kept_and_shown_and_no_step_is_made_of_it(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([result(offset, 0)])
    ticks = [tick(offset, 1, n, later=n / 1000, message=f"file {n}") for n in range(1, 101)]
    outcomes = await ledger.store_replies(ticks)
    assert set(outcomes) == {StoreOutcome.STORED}

    record = await ledger.job(offset)
    assert record.progress == ProgressReport(
        current=100, total=100, message="file 100", seq=1, produced_at=ticks[-1].produced_at
    )
    assert [r.seq for r in record.replies] == [0]  # results unchanged: no step, no prefix move
    assert [r.value for r in await ledger.replies(offset)] == ["result1"]
    assert await ledger.progress(offset) == ticks[-1]

    await ledger.store_replies([result(offset, 1)])  # the step ends: the next seq follows on
    assert [r.seq for r in await ledger.replies(offset)] == [0, 1]


async def test_an_older_tick_arriving_late_does_not_replace_a_newer_one(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    newer, older = tick(offset, 0, 50, later=1), tick(offset, 0, 40)
    assert await ledger.store_replies([newer, older]) == [StoreOutcome.STORED, StoreOutcome.STALE]
    assert await ledger.store_replies([newer]) == [StoreOutcome.STALE]  # a redelivery
    assert (await ledger.job(offset)).progress.current == 50


async def test_a_tick_after_the_job_ended_is_not_shown(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    last = tick(offset, 0, 100)
    await ledger.store_replies([last, result(offset, 0), result(offset, 1, "done")])
    late = tick(offset, 0, 7, later=5)
    after = tick(offset, 2, 7, later=5)
    assert await ledger.store_replies([late, after]) == [
        StoreOutcome.STALE,
        StoreOutcome.AFTER_FINAL,
    ]
    record = await ledger.job(offset)
    assert record.progress.current == 100
    assert record.state == "done"
    assert [r.kind for r in record.replies] == [ReplyKind.RESULT, ReplyKind.DONE]


async def test_a_tick_for_an_offset_never_handed_out_is_refused(ledger):
    assert await ledger.store_replies([tick(999, 0, 1)]) == [StoreOutcome.UNKNOWN_OFFSET]
    assert await ledger.progress(999) is None


async def test_a_job_that_never_reported_shows_no_progress(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([result(offset, 0)])
    assert (await ledger.job(offset)).progress is None
    assert await ledger.progress(offset) is None


async def test_a_kept_tick_rings_followers_on_every_gateway(postgres_url):
    ledger = PostgresLedger(postgres_url)
    await ledger.open()
    heard: asyncio.Queue[int] = asyncio.Queue()
    listener = ledger.reply_listener(heard.put_nowait, lambda: None)
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        offset, _ = await ledger.create_job(REQUEST)
        await ledger.store_replies([tick(offset, 0, 1)])
        assert await asyncio.wait_for(heard.get(), 10) == offset
    finally:
        await listener.stop()
        await ledger.close()


async def test_a_follower_reads_the_replies_and_the_kept_tick_in_one_call(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    latest = tick(offset, 1, 50)
    await ledger.store_replies([result(offset, 0), latest])
    found = await ledger.replies(offset, -1, with_progress=True)
    assert [(r.seq, r.kind) for r in found] == [(0, ReplyKind.RESULT), (1, ReplyKind.PROGRESS)]
    assert found[1] == latest
    assert await ledger.replies(offset, 1, with_progress=True) == []  # its step is behind
    assert [r.kind for r in await ledger.replies(offset)] == [ReplyKind.RESULT]

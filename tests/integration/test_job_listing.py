"""The jobs list, the feed and the counts, on both ledgers: what GET /jobs, /jobs/stream and
/stats read."""

import asyncio
from datetime import timedelta

import pytest

from contracts import JobRequest, JobState, Reply, ReplyKind
from contracts.listing import JobFilter
from contracts.messages import utcnow
from ledger import open_ledger


def request(fn: str = "default_fn", tags: list[str] | None = None) -> JobRequest:
    return JobRequest(deployment="Docker", framework="FastAPI", fn=fn, tags=tags or [])


def reply(offset: int, seq: int, kind: str = "result", value: object = None) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=value or f"result{seq + 1}")


async def run(ledger, offset: int, steps: int, end: str = "done") -> None:
    """Store a whole job: `steps` results, then its final reply."""
    await ledger.store_replies([reply(offset, s) for s in range(steps)])
    await ledger.store_replies([reply(offset, steps, end, end)])


async def test_the_list_is_newest_first_with_steps_duration_tags_and_error(ledger):
    done, _ = await ledger.create_job(request(tags=["eu", "nightly"]))
    failed, _ = await ledger.create_job(request("other"))
    running, _ = await ledger.create_job(request())
    await run(ledger, done, 3)
    await run(ledger, failed, 1, "error")
    await ledger.store_replies([reply(running, 0), reply(running, 1)])

    rows = await ledger.list_jobs(JobFilter(), None, 50)

    assert [row.offset for row in rows] == [running, failed, done]
    by = {row.offset: row for row in rows}
    assert (by[done].state, by[done].steps, by[done].tags) == (JobState.DONE, 3, ["eu", "nightly"])
    assert by[done].duration_seconds is not None
    assert by[done].duration_seconds >= 0
    assert (by[failed].state, by[failed].steps, by[failed].error) == (JobState.FAILED, 1, "error")
    assert (by[running].state, by[running].steps, by[running].duration_seconds) == (
        JobState.RUNNING,
        2,
        None,
    )
    assert by[running].tags == []
    assert by[running].error is None


async def test_each_filter_keeps_only_the_jobs_it_names(ledger):
    eu, _ = await ledger.create_job(request(tags=["eu"]))
    us, _ = await ledger.create_job(request("other", tags=["us"]))
    both, _ = await ledger.create_job(request(tags=["eu", "us"]))
    await run(ledger, us, 1)

    async def offsets(**given: object) -> list[int]:
        return [row.offset for row in await ledger.list_jobs(JobFilter(**given), None, 50)]

    assert await offsets(tag="eu") == [both, eu]
    assert await offsets(tag="us", fn="default_fn") == [both]
    assert await offsets(state=JobState.DONE) == [us]
    assert await offsets(fn="other") == [us]
    assert await offsets(tag="nowhere") == []
    now = utcnow()
    assert await offsets(since=now - timedelta(minutes=1)) == [both, us, eu]
    assert await offsets(until=now - timedelta(minutes=1)) == []
    assert await offsets(since=now + timedelta(minutes=1)) == []


async def test_pages_below_a_cursor_cover_every_job_once(ledger):
    created = [(await ledger.create_job(request()))[0] for _ in range(7)]
    seen: list[int] = []
    before = None
    while rows := await ledger.list_jobs(JobFilter(), before, 3):
        seen += [row.offset for row in rows]
        before = rows[-1].offset
    assert seen == sorted(created, reverse=True)


async def test_a_request_without_tags_is_stored_as_the_same_text_as_before_tags_existed(
    database_url,
):
    ledger = open_ledger(database_url)
    await ledger.open()
    try:
        offset, _ = await ledger.create_job(request())
        old_text = '{"deployment":"Docker","framework":"FastAPI","fn":"default_fn"}'
        assert request().model_dump_json() == old_text
        # an idempotent repeat of a request stored before tags existed is the same request
        again, created = await ledger.create_job(request(), "key-1")
        same, created_again = await ledger.create_job(request(), "key-1")
        assert (same, created, created_again) == (again, True, False)
        assert (await ledger.job(offset)).request == request()
    finally:
        await ledger.close()


async def test_the_feed_gives_each_reply_once_in_recording_order_and_each_job_in_seq_order(
    ledger,
):
    a, _ = await ledger.create_job(request(tags=["eu"]))
    b, _ = await ledger.create_job(request("other"))
    assert await ledger.feed_end() == 0
    await ledger.store_replies([reply(a, 0)])
    await ledger.store_replies([reply(b, 1)])  # ahead of b's seq 0: not in the feed yet
    await ledger.store_replies([reply(a, 1)])
    first = await ledger.feed(JobFilter(), 0, 100)
    assert [(r.offset, r.seq) for _, r in first] == [(a, 0), (a, 1)]
    await ledger.store_replies([reply(b, 0)])  # b's 0 and 1 join the feed now, in seq order
    await ledger.store_replies([reply(a, 2, "done", "done")])
    whole = await ledger.feed(JobFilter(), 0, 100)
    assert [(r.offset, r.seq) for _, r in whole] == [(a, 0), (a, 1), (b, 0), (b, 1), (a, 2)]
    cursors = [cursor for cursor, _ in whole]
    assert cursors == list(range(1, 6))
    assert await ledger.feed_end() == 5
    assert [(r.offset, r.seq) for _, r in await ledger.feed(JobFilter(), 3, 100)] == [
        (b, 1),
        (a, 2),
    ]
    assert {r.offset for _, r in await ledger.feed(JobFilter(tag="eu"), 0, 100)} == {a}
    assert {r.offset for _, r in await ledger.feed(JobFilter(fn="other"), 0, 100)} == {b}
    assert [r.kind for _, r in await ledger.feed(JobFilter(state=JobState.DONE), 0, 100)] == [
        ReplyKind.RESULT,
        ReplyKind.RESULT,
        ReplyKind.DONE,
    ]
    assert len(await ledger.feed(JobFilter(), 0, 2)) == 2


async def test_concurrent_stores_hand_out_feed_cursors_without_gap_or_repeat(ledger):
    offsets = [(await ledger.create_job(request()))[0] for _ in range(20)]
    await asyncio.gather(*(ledger.store_replies([reply(o, s)]) for o in offsets for s in range(5)))
    cursors = [cursor for cursor, _ in await ledger.feed(JobFilter(), 0, 500)]
    assert cursors == list(range(1, 101))


async def test_stats_count_recent_jobs_by_state_and_completed_per_minute(ledger):
    done = [(await ledger.create_job(request()))[0] for _ in range(3)]
    failed, _ = await ledger.create_job(request())
    await ledger.create_job(request())
    for offset in done:
        await run(ledger, offset, 1)
    await run(ledger, failed, 0, "error")

    counts, per_minute = await ledger.stats(5)

    assert counts[JobState.DONE] == 3
    assert counts[JobState.FAILED] == 1
    assert counts[JobState.QUEUED] == 1
    assert counts[JobState.RUNNING] == 0
    assert per_minute == [0, 0, 0, 0, 3]


@pytest.mark.parametrize("minutes", [1, 1440])
async def test_the_per_minute_series_is_as_long_as_the_window(ledger, minutes):
    _, per_minute = await ledger.stats(minutes)
    assert per_minute == [0] * minutes

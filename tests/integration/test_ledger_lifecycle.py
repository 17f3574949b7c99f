"""Batches and retention in the ledger, on SQLite and PostgreSQL alike: a batch recorded at
once or not at all, finished jobs purged or deleted, and purged offsets telling 410 from 404."""

import asyncio
import sqlite3
from datetime import timedelta

import asyncpg
import pytest

from contracts import IdempotencyConflictError, JobRequest, JobState, Reply, UnknownOffsetError
from contracts.errors import JobNotFinishedError, OffsetExpiredError
from contracts.messages import utcnow
from ledger import Ledger, open_ledger
from ledger.postgres_lifecycle import PURGE_LOCK
from ledger.retention import Purger

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")
OTHER = JobRequest(deployment="k8s", framework="Flask", fn="default_fn")
LATER = utcnow() + timedelta(hours=1)


async def finish(ledger: Ledger, offset: int) -> None:
    await ledger.store_replies(
        [
            Reply(offset=offset, seq=0, kind="result", value="r1"),
            Reply(offset=offset, seq=1, kind="done", value="done"),
        ]
    )


async def test_a_batch_gets_consecutive_offsets_in_order_in_one_write(ledger):
    (before, _) = await ledger.create_job(REQUEST)
    placed = await ledger.create_jobs([(REQUEST, None), (OTHER, None), (REQUEST, "k")], [None] * 3)
    assert placed == [(before + 1, True), (before + 2, True), (before + 3, True)]
    assert (await ledger.job(before + 2)).request == OTHER
    assert (await ledger.job(before + 3)).state is JobState.QUEUED


async def test_a_repeated_batch_answers_the_same_offsets_and_records_nothing_new(ledger):
    items = [(REQUEST, "a"), (OTHER, "b"), (REQUEST, None)]
    first = await ledger.create_jobs(items, [None] * 3)
    again = await ledger.create_jobs(items, [None] * 3)
    assert [o for o, _ in again[:2]] == [o for o, _ in first[:2]]
    assert [created for _, created in again] == [False, False, True]  # no key: a new job


async def test_a_key_reused_for_another_request_records_nothing_of_the_batch(ledger):
    await ledger.create_job(REQUEST, "a")
    with pytest.raises(IdempotencyConflictError):
        await ledger.create_jobs([(OTHER, "fresh"), (OTHER, "a")], [None, None])
    _, created = await ledger.create_job(OTHER, "fresh")
    assert created  # the refused batch recorded nothing under "fresh"


async def test_a_batch_with_a_due_time_waits_scheduled(ledger):
    [(offset, _)] = await ledger.create_jobs([(REQUEST, None)], [LATER])
    assert (await ledger.job(offset)).state is JobState.SCHEDULED


async def test_discarded_batch_jobs_are_never_handed_out_and_404(ledger):
    placed = await ledger.create_jobs([(REQUEST, "x"), (OTHER, None)], [None, None])
    await ledger.discard_jobs([o for o, _ in placed])
    for offset, _ in placed:
        with pytest.raises(UnknownOffsetError) as caught:
            await ledger.job(offset)
        assert not isinstance(caught.value, OffsetExpiredError)
    [(again, created)] = await ledger.create_jobs([(REQUEST, "x")], [None])  # key free again
    assert created
    assert again > placed[-1][0]


async def test_purged_offsets_are_410_never_handed_out_ones_404(ledger):
    offsets = [(await ledger.create_job(REQUEST))[0] for _ in range(5)]
    for offset in offsets[:4]:
        await finish(ledger, offset)
    discarded, _ = await ledger.create_job(REQUEST)
    await ledger.discard_job(discarded)
    assert await ledger.purge_finished(utcnow() + timedelta(seconds=1), 500) == 4
    for offset in offsets[:4]:
        with pytest.raises(OffsetExpiredError):
            await ledger.job(offset)
        with pytest.raises(OffsetExpiredError):
            await ledger.replies(offset)
    assert (await ledger.job(offsets[4])).state is JobState.QUEUED  # not finished: kept
    for never in (discarded, discarded + 1000):
        with pytest.raises(UnknownOffsetError) as caught:
            await ledger.job(never)
        assert not isinstance(caught.value, OffsetExpiredError)


async def test_only_jobs_finished_before_the_cutoff_are_purged(ledger):
    old, _ = await ledger.create_job(REQUEST)
    await finish(ledger, old)
    cutoff = utcnow()
    young, _ = await ledger.create_job(REQUEST)
    await finish(ledger, young)
    assert await ledger.purge_finished(cutoff, 500) == 1
    with pytest.raises(OffsetExpiredError):
        await ledger.job(old)
    assert (await ledger.job(young)).state is JobState.DONE


async def test_a_purge_takes_at_most_its_limit_per_transaction(ledger):
    for _ in range(7):
        offset, _ = await ledger.create_job(REQUEST)
        await finish(ledger, offset)
    later = utcnow() + timedelta(seconds=1)
    assert [await ledger.purge_finished(later, 3) for _ in range(4)] == [3, 3, 1, 0]


async def test_delete_removes_a_finished_job_now_and_says_409_404_410(ledger):
    done, _ = await ledger.create_job(REQUEST)
    await finish(ledger, done)
    running, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([Reply(offset=running, seq=0, kind="result", value="r1")])
    queued, _ = await ledger.create_job(REQUEST)

    await ledger.delete_job(done)
    with pytest.raises(OffsetExpiredError):
        await ledger.job(done)
    with pytest.raises(OffsetExpiredError):
        await ledger.delete_job(done)  # twice: 410
    for unfinished in (running, queued):
        with pytest.raises(JobNotFinishedError):
            await ledger.delete_job(unfinished)
        assert (await ledger.job(unfinished)).state in (JobState.RUNNING, JobState.QUEUED)
    with pytest.raises(UnknownOffsetError) as caught:
        await ledger.delete_job(queued + 1)
    assert not isinstance(caught.value, OffsetExpiredError)


async def test_a_purged_job_takes_no_late_reply_and_its_offset_stays_expired(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await finish(ledger, offset)
    await ledger.delete_job(offset)
    [outcome] = await ledger.store_replies([Reply(offset=offset, seq=0, kind="result", value=1)])
    assert outcome.refused
    with pytest.raises(OffsetExpiredError):
        await ledger.replies(offset)


async def test_purging_while_jobs_are_written_loses_nothing_else(ledger):
    """Jobs are created, run and finished while a purger with a tiny retention works through
    the finished ones: every job is either whole or expired, never half gone or 404."""
    purger = Purger(ledger, timedelta(milliseconds=1), batch=20, pause=0)
    offsets: list[int] = []

    async def write() -> None:
        for round_ in range(30):
            batch = await ledger.create_jobs([(REQUEST, None)] * 10, [None] * 10)
            offsets.extend(o for o, _ in batch)
            await asyncio.gather(*(finish(ledger, o) for o, _ in batch[: 5 + round_ % 5]))

    async def purge() -> int:
        total = 0
        while not writing.done():
            total += await purger.purge_once()
            await asyncio.sleep(0.01)
        # NOTE: the last job may have finished less than the retention (1 ms) before this
        # round's cutoff: let the retention pass, so the final round owes nothing.
        await asyncio.sleep(0.05)
        return total + await purger.purge_once()

    writing = asyncio.ensure_future(write())
    purged = await purge()
    await writing
    assert 0 < purged < len(offsets)
    kept = 0
    for offset in offsets:
        try:
            record = await ledger.job(offset)
        except OffsetExpiredError:
            continue
        kept += 1
        assert record.state is JobState.QUEUED  # every finished one went, unfinished stayed
        assert record.replies == []
    assert kept + purged == len(offsets)


async def test_sqlite_hands_purged_pages_back_to_the_file_system(sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    ledger = open_ledger(sqlite_url)
    await ledger.open()
    big = "x" * 4000
    for _ in range(20):
        batch = await ledger.create_jobs([(REQUEST, None)] * 25, [None] * 25)
        for offset, _ in batch:
            await ledger.store_replies(
                [
                    Reply(offset=offset, seq=0, kind="result", value=big),
                    Reply(offset=offset, seq=1, kind="done", value="done"),
                ]
            )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages_before,) = conn.execute("PRAGMA page_count").fetchone()
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
    purger = Purger(ledger, timedelta(milliseconds=1))
    assert await purger.purge_once() == 500
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages_after,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    await ledger.close()
    assert free == 0
    assert pages_after < pages_before / 4, (pages_before, pages_after)


async def test_on_postgresql_one_gateway_purges_at_a_time(postgres_url):
    """While another gateway's purge holds the lock, a purge here does nothing (None), and
    takes its turn once the lock is free."""
    ledger = open_ledger(postgres_url)
    await ledger.open()
    offset, _ = await ledger.create_job(REQUEST)
    await finish(ledger, offset)
    later = utcnow() + timedelta(seconds=1)
    other = await asyncpg.connect(postgres_url)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", PURGE_LOCK)
            assert await ledger.purge_finished(later, 500) is None
            assert (await ledger.job(offset)).state is JobState.DONE
        assert await ledger.purge_finished(later, 500) == 1
    finally:
        await other.close()
        await ledger.close()


async def test_sqlite_hands_a_deleted_jobs_pages_back_at_once(sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    ledger = open_ledger(sqlite_url)
    await ledger.open()
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies(
        [Reply(offset=offset, seq=seq, kind="result", value="x" * 3000) for seq in range(200)]
        + [Reply(offset=offset, seq=200, kind="done", value="done")]
    )
    await ledger.delete_job(offset)
    await ledger.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
    assert free == 0
    assert pages < 40, pages  # 200 replies of 3 KB took ~150 pages

"""Cancel requests and delayed starts in the ledger, on SQLite and PostgreSQL alike."""

import asyncio
from datetime import timedelta

import pytest

from contracts import JobRequest, JobState, Reply, ReplyKind, UnknownOffsetError
from contracts.messages import utcnow
from ledger import StoreOutcome, open_ledger
from ledger.rules import CancelOutcome
from query.progress import progress
from tests.support.waiting import eventually

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def result(offset: int, seq: int) -> Reply:
    return Reply(offset=offset, seq=seq, kind=ReplyKind.RESULT, value=f"result{seq + 1}")


def cancelled(offset: int, seq: int) -> Reply:
    return Reply(offset=offset, seq=seq, kind=ReplyKind.CANCELLED, value="cancelled")


async def test_cancelling_a_queued_job_is_recorded_and_the_worker_taking_it_ends_it(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    assert await ledger.cancel_job(offset) == (CancelOutcome.REQUESTED, JobState.QUEUED)
    record = await ledger.job(offset)
    assert (record.state, record.cancel_requested, record.replies) == (
        JobState.QUEUED,
        True,
        [],
    )
    resume = await progress(ledger, offset)
    assert (resume.next_seq, resume.finished, resume.cancel_requested) == (0, False, True)
    # a worker had taken it a moment before: its first result is kept, then the cancel
    assert await ledger.store_replies([result(offset, 0), cancelled(offset, 1)]) == [
        StoreOutcome.STORED,
        StoreOutcome.STORED,
    ]
    assert [r.value for r in await ledger.replies(offset)] == ["result1", "cancelled"]
    assert (await ledger.job(offset)).state is JobState.CANCELLED


async def test_cancelling_a_running_job_is_recorded_and_its_worker_ends_it(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([result(offset, 0)])
    assert await ledger.cancel_job(offset) == (CancelOutcome.REQUESTED, JobState.RUNNING)
    assert await ledger.cancel_job(offset) == (CancelOutcome.REQUESTED, JobState.RUNNING)
    resume = await progress(ledger, offset)
    assert (resume.next_seq, resume.cancel_requested, resume.finished) == (1, True, False)

    assert await ledger.store_replies([cancelled(offset, 1)]) == [StoreOutcome.STORED]
    record = await ledger.job(offset)
    assert record.state is JobState.CANCELLED
    assert [r.value for r in record.replies] == ["result1", "cancelled"]
    assert await ledger.cancel_job(offset) == (CancelOutcome.ALREADY, JobState.CANCELLED)
    # nothing after the cancelled final
    assert await ledger.store_replies([result(offset, 2)]) == [StoreOutcome.AFTER_FINAL]


async def test_a_cancelled_reply_nobody_asked_for_is_refused(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    assert await ledger.store_replies([cancelled(offset, 0)]) == [StoreOutcome.CANCEL_NOT_REQUESTED]
    assert (await ledger.job(offset)).state is JobState.QUEUED


async def test_cancelling_a_finished_job_changes_nothing(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    done = Reply(offset=offset, seq=1, kind=ReplyKind.DONE, value="done")
    await ledger.store_replies([result(offset, 0), done])
    before = await ledger.job(offset)
    assert await ledger.cancel_job(offset) == (CancelOutcome.FINISHED, JobState.DONE)
    assert await ledger.job(offset) == before
    with pytest.raises(UnknownOffsetError):
        await ledger.cancel_job(offset + 1)


async def test_a_delayed_job_is_scheduled_until_due_then_claimed_once(ledger):
    now = utcnow()
    later, _ = await ledger.create_job(REQUEST, due_at=now + timedelta(hours=1))
    due, _ = await ledger.create_job(REQUEST, due_at=now - timedelta(seconds=1))
    record = await ledger.job(due)
    assert record.state is JobState.SCHEDULED
    assert record.due_at is not None
    assert abs((record.due_at - (now - timedelta(seconds=1))).total_seconds()) < 0.001

    claims = await asyncio.gather(*(ledger.claim_due(10) for _ in range(5)))
    assert sorted(offset for claim in claims for offset, _ in claim) == [due]
    assert [request for claim in claims for _, request in claim] == [REQUEST]
    assert (await ledger.job(due)).state is JobState.SCHEDULED  # until confirmed
    await ledger.mark_released(due)
    record = await ledger.job(due)
    assert (record.state, record.due_at) == (JobState.QUEUED, None)
    assert (await ledger.job(later)).state is JobState.SCHEDULED
    assert await ledger.claim_due(10) == []


async def test_a_delayed_job_cancelled_while_waiting_ends_at_once_and_is_never_claimed(ledger):
    offset, _ = await ledger.create_job(REQUEST, due_at=utcnow())
    assert await ledger.cancel_job(offset) == (CancelOutcome.ENDED, JobState.CANCELLED)
    record = await ledger.job(offset)
    assert (record.state, record.cancel_requested, record.due_at) == (
        JobState.CANCELLED,
        True,
        None,
    )
    assert [(r.seq, r.kind) for r in record.replies] == [(0, ReplyKind.CANCELLED)]
    assert await ledger.claim_due(10) == []
    await ledger.mark_released(offset)  # a release that was under way changes nothing
    assert (await ledger.job(offset)).state is JobState.CANCELLED
    # and the worker that took that release ends it too: the same cancel, stored once
    assert await ledger.store_replies([cancelled(offset, 0)]) == [StoreOutcome.DUPLICATE]


async def test_a_claim_not_marked_released_is_claimed_again_after_its_lease(ledger, monkeypatch):
    monkeypatch.setattr("ledger.sqlite.RELEASE_LEASE_SECONDS", 0.2)
    monkeypatch.setattr("ledger.postgres.RELEASE_LEASE_SECONDS", 0.2)
    offset, _ = await ledger.create_job(REQUEST, due_at=utcnow())
    assert [o for o, _ in await ledger.claim_due(10)] == [offset]
    assert await ledger.claim_due(10) == []
    again = await eventually(lambda: ledger.claim_due(10), until=bool, timeout=5)
    assert [o for o, _ in again] == [offset]


async def test_two_ledgers_on_one_postgres_claim_each_due_job_once(postgres_url):
    gateways = [open_ledger(postgres_url) for _ in range(2)]
    for ledger in gateways:
        await ledger.open()
    try:
        now = utcnow()
        offsets = [(await gateways[0].create_job(REQUEST, due_at=now))[0] for _ in range(200)]
        claimed: list[int] = []

        async def claim(ledger):
            while batch := await ledger.claim_due(7):
                claimed.extend(offset for offset, _ in batch)

        await asyncio.gather(*(claim(ledger) for ledger in gateways for _ in range(3)))
        assert sorted(claimed) == offsets
    finally:
        for ledger in gateways:
            await ledger.close()


async def test_a_release_rabbitmq_did_not_confirm_is_released_again(ledger, monkeypatch):
    from contracts import BrokerUnavailableError, Job
    from producer.release import Releaser

    monkeypatch.setattr("ledger.sqlite.RELEASE_LEASE_SECONDS", 0.2)
    monkeypatch.setattr("ledger.postgres.RELEASE_LEASE_SECONDS", 0.2)
    published: list[int] = []

    async def publish(job: Job) -> None:
        if not published:
            published.append(-1)
            raise BrokerUnavailableError("not confirmed")
        published.append(job.offset)

    releaser = Releaser(ledger, publish)
    offset, _ = await ledger.create_job(REQUEST, due_at=utcnow())
    with pytest.raises(BrokerUnavailableError):
        await releaser.release_due()
    assert (await ledger.job(offset)).state is JobState.SCHEDULED
    await eventually(releaser.release_due, until=bool, timeout=5)
    assert published == [-1, offset]
    assert (await ledger.job(offset)).state is JobState.QUEUED
    assert await releaser.release_due() == 0


async def test_pending_cancels_lists_the_unfinished_cancelled_jobs_only(ledger):
    offsets = [(await ledger.create_job(REQUEST))[0] for _ in range(5)]
    queued, running, ended, untouched, last = offsets
    delayed, _ = await ledger.create_job(REQUEST, due_at=utcnow() + timedelta(minutes=5))
    for offset in (queued, running, ended, last, delayed):
        await ledger.cancel_job(offset)
    await ledger.store_replies([result(running, 0)])  # running: cancel asked, not ended yet
    await ledger.store_replies([result(ended, 0), cancelled(ended, 1)])  # ended: nothing to do
    assert (await ledger.job(delayed)).state is JobState.CANCELLED  # ended by the gateway
    assert await ledger.pending_cancels(10) == [queued, running, last]
    assert await ledger.pending_cancels(2) == [queued, running]
    assert untouched not in await ledger.pending_cancels(10)

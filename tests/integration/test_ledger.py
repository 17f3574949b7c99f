"""The ledger on a real database: SQLite file and PostgreSQL, the same expectations."""

import asyncio

import pytest

from contracts import (
    IdempotencyConflictError,
    JobRequest,
    JobState,
    Reply,
    ReplyKind,
    UnknownOffsetError,
)
from contracts.errors import LedgerRejectedError
from contracts.messages import utcnow
from ledger import StoreOutcome, open_ledger
from query.progress import progress

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def reply(offset: int, seq: int, kind: str = "result", value: object = None) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=value or f"result{seq + 1}")


async def test_offsets_start_at_zero_and_are_unique_under_concurrency(ledger):
    created = await asyncio.gather(*(ledger.create_job(REQUEST) for _ in range(50)))
    assert sorted(offset for offset, _ in created) == list(range(50))
    assert all(new for _, new in created)


async def test_offsets_are_never_reused_after_a_restart_or_a_discard(database_url):
    first = open_ledger(database_url)
    await first.open()
    a, _ = await first.create_job(REQUEST)
    b, _ = await first.create_job(REQUEST)
    await first.discard_job(b)
    await first.close()

    second = open_ledger(database_url)
    await second.open()
    c, _ = await second.create_job(REQUEST)
    await second.close()
    assert (a, b, c) == (0, 1, 2)


async def test_a_new_job_is_queued_with_no_results(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    record = await ledger.job(offset)
    assert (record.state, record.request, record.replies) == (JobState.QUEUED, REQUEST, [])
    assert await ledger.replies(offset) == []


async def test_unknown_offsets_are_told_apart_from_empty_jobs(ledger):
    with pytest.raises(UnknownOffsetError):
        await ledger.replies(999)
    with pytest.raises(UnknownOffsetError):
        await ledger.job(999)


async def test_replies_are_kept_in_step_order_and_move_the_state(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([reply(offset, 1)])
    await ledger.store_replies([reply(offset, 0)])
    assert (await ledger.job(offset)).state is JobState.RUNNING
    await ledger.store_replies([reply(offset, 2), reply(offset, 3, "done", "done")])
    record = await ledger.job(offset)
    assert record.state is JobState.DONE
    assert [r.value for r in record.replies] == ["result1", "result2", "result3", "done"]
    assert [r.value for r in await ledger.replies(offset, after_seq=1)] == ["result3", "done"]


async def test_the_same_reply_twice_is_stored_once(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    first = await ledger.store_replies([reply(offset, 0)])
    again = await asyncio.gather(*(ledger.store_replies([reply(offset, 0)]) for _ in range(5)))
    assert first == [StoreOutcome.STORED]
    assert all(outcome == [StoreOutcome.DUPLICATE] for outcome in again)
    assert len(await ledger.replies(offset)) == 1


async def test_a_reply_for_an_offset_never_handed_out_is_not_stored(ledger):
    assert await ledger.store_replies([reply(41, 0)]) == [StoreOutcome.UNKNOWN_OFFSET]
    with pytest.raises(UnknownOffsetError):
        await ledger.replies(41)


async def test_a_failed_job_keeps_its_error(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([reply(offset, 0), reply(offset, 1, "error", "step 1 failed")])
    record = await ledger.job(offset)
    assert (record.state, record.error) == (JobState.FAILED, "step 1 failed")


async def test_an_idempotency_key_returns_the_first_offset(ledger):
    first = await ledger.create_job(REQUEST, idempotency_key="k-1")
    repeats = await asyncio.gather(*(ledger.create_job(REQUEST, "k-1") for _ in range(5)))
    assert first == (0, True)
    assert set(repeats) == {(0, False)}
    assert (await ledger.create_job(REQUEST, "k-2"))[0] == 1


async def test_an_idempotency_key_reused_for_another_request_is_a_conflict(ledger):
    await ledger.create_job(REQUEST, idempotency_key="k")
    other = REQUEST.model_copy(update={"fn": "other"})
    with pytest.raises(IdempotencyConflictError):
        await ledger.create_job(other, idempotency_key="k")


async def test_a_discarded_job_is_gone(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.discard_job(offset)
    with pytest.raises(UnknownOffsetError):
        await ledger.job(offset)


async def test_progress_is_where_a_redelivered_job_resumes(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    assert (await progress(ledger, offset)).next_seq == 0
    await ledger.store_replies([reply(offset, 0), reply(offset, 1)])
    resume = await progress(ledger, offset)
    assert (resume.next_seq, resume.previous, resume.finished) == (2, "result2", False)
    await ledger.store_replies([reply(offset, 2), reply(offset, 3, "done", "done")])
    assert (await progress(ledger, offset)).finished


async def test_values_may_be_any_json(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([reply(offset, 0, value={"rows": [1, 2], "ok": True})])
    assert (await ledger.replies(offset))[0].value == {"rows": [1, 2], "ok": True}


async def test_ping_answers_while_the_database_is_up(ledger):
    await ledger.ping()


def test_unsupported_urls_are_refused_clearly():
    with pytest.raises(ValueError, match="unsupported ledger URL"):
        open_ledger("mysql://x")
    with pytest.raises(ValueError, match="needs a file"):
        open_ledger("sqlite://")


async def test_a_reply_stored_ahead_of_a_missing_one_is_shown_only_once_the_gap_closes(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies([reply(offset, 0), reply(offset, 1)])
    await ledger.store_replies([reply(offset, 3, "done", "done")])  # another gateway was faster

    assert [r.seq for r in await ledger.replies(offset)] == [0, 1]
    assert (await ledger.job(offset)).state is JobState.RUNNING  # done, but not shown yet

    await ledger.store_replies([reply(offset, 2)])

    assert [r.seq for r in await ledger.replies(offset)] == [0, 1, 2, 3]
    assert [r.seq for r in await ledger.replies(offset, after_seq=1)] == [2, 3]
    assert (await ledger.job(offset)).state is JobState.DONE


async def test_what_cannot_be_true_of_a_job_is_refused_and_not_stored(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    done = [reply(offset, 0), reply(offset, 1, "done", "done")]
    assert await ledger.store_replies(done) == [StoreOutcome.STORED] * 2

    outcomes = await ledger.store_replies(
        [
            reply(offset, 2, value="after done"),
            reply(offset, 0, "error", "a second final"),
            reply(offset, 1, "done", "done"),  # the same final again: a redelivery
        ]
    )

    assert outcomes == [
        StoreOutcome.AFTER_FINAL,
        StoreOutcome.SECOND_FINAL,
        StoreOutcome.DUPLICATE,
    ]
    assert [r.value for r in await ledger.replies(offset)] == ["result1", "done"]


async def test_a_reply_far_beyond_what_pipelining_allows_is_refused(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    assert await ledger.store_replies([reply(offset, 5000)]) == [StoreOutcome.TOO_FAR_AHEAD]
    assert (await ledger.job(offset)).state is JobState.QUEUED


async def test_a_write_the_database_refuses_fails_alone_as_rejected_not_unavailable(ledger):
    offset, _ = await ledger.create_job(REQUEST)
    # NOTE: model_construct skips the contract's bounds, as a bug of ours might.
    overflowing = Reply.model_construct(
        offset=2**70, seq=0, kind=ReplyKind.RESULT, value="v", produced_at=utcnow()
    )

    with pytest.raises(LedgerRejectedError):
        await ledger.store_replies([reply(offset, 0), overflowing])

    assert await ledger.replies(offset) == []  # nothing of that batch
    assert await ledger.store_replies([reply(offset, 0)]) == [StoreOutcome.STORED]
    again, _ = await ledger.create_job(REQUEST)  # the ledger goes on writing
    assert again == offset + 1


async def test_a_ledger_from_before_the_bookkeeping_columns_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE offsets (next INTEGER NOT NULL); INSERT INTO offsets VALUES (2);
        CREATE TABLE jobs (id INTEGER PRIMARY KEY, request TEXT NOT NULL, fn TEXT NOT NULL,
            state TEXT NOT NULL, idempotency_key TEXT UNIQUE, error TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE replies (job_id INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
            value TEXT NOT NULL, produced_at TEXT NOT NULL, PRIMARY KEY (job_id, seq))
            WITHOUT ROWID;
        """
    )
    now = "2026-01-01T00:00:00+00:00"
    request = REQUEST.model_dump_json()
    old.executemany(
        "INSERT INTO jobs VALUES (?, ?, 'default_fn', ?, NULL, NULL, ?, ?)",
        [(0, request, "done", now, now), (1, request, "running", now, now)],
    )
    old.executemany(
        "INSERT INTO replies VALUES (?, ?, ?, '\"v\"', ?)",
        [(0, 0, "result", now), (0, 1, "done", now), (1, 0, "result", now)],
    )
    old.commit()
    old.close()

    ledger = open_ledger(f"sqlite:///{path}")
    await ledger.open()
    try:
        assert await ledger.store_replies([reply(0, 2)]) == [StoreOutcome.AFTER_FINAL]
        assert await ledger.store_replies([reply(1, 1, "done")]) == [StoreOutcome.STORED]
        assert (await ledger.job(1)).state is JobState.DONE
        assert len(await ledger.replies(1)) == 2
    finally:
        await ledger.close()


async def test_a_batch_stores_as_its_replies_would_one_by_one(ledger):
    # One batch with every case a job's bookkeeping meets: ahead of a gap, the gap filled
    # (the ledger reads the seqs above), the same reply twice, a final, a reply after it, a
    # failed job's reason, progress between steps, an offset never handed out.
    def batch(a: int, b: int) -> list[Reply]:
        return [
            reply(a, 1),
            reply(b, 0),
            reply(a, 0),
            reply(a, 0),
            Reply(offset=a, seq=2, kind=ReplyKind.PROGRESS, value={"current": 1}),
            reply(b, 1, "error", "step 1 failed"),
            reply(a, 3, "done", "done"),
            reply(a, 2),
            reply(a, 4),
            reply(b, 2),
            reply(999_999, 0),
        ]

    together = [(await ledger.create_job(REQUEST))[0] for _ in range(2)]
    alone = [(await ledger.create_job(REQUEST))[0] for _ in range(2)]
    outcomes_together = await ledger.store_replies(batch(*together))
    outcomes_alone = [(await ledger.store_replies([r]))[0] for r in batch(*alone)]
    assert outcomes_together == outcomes_alone
    assert StoreOutcome.DUPLICATE in outcomes_together
    assert StoreOutcome.AFTER_FINAL in outcomes_together
    for offset_together, offset_alone in zip(together, alone, strict=True):
        mine, theirs = await ledger.job(offset_together), await ledger.job(offset_alone)
        assert (mine.state, mine.error) == (theirs.state, theirs.error)
        assert [r.value for r in mine.replies] == [r.value for r in theirs.replies]
    assert (await ledger.job(together[0])).state is JobState.DONE
    assert (await ledger.job(together[1])).state is JobState.FAILED
    assert (await ledger.job(together[1])).error == "step 1 failed"
    assert [r.seq for r in await ledger.replies(together[0])] == [0, 1, 2, 3]

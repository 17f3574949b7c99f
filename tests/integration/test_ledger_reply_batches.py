"""A batch of replies is stored as storing them one by one would, in one transaction, on both
ledgers; on PostgreSQL two gateways storing batches of the same jobs at once never deadlock,
and the feed they give is gap-free and in order."""

import asyncio
import random
from datetime import timedelta

import asyncpg

from contracts import JobRequest, JobState, Reply, ReplyKind
from contracts.listing import JobFilter
from contracts.messages import SEQ_WINDOW, utcnow
from ledger import Ledger, StoreOutcome
from ledger.postgres import PostgresLedger

REQUEST = JobRequest(deployment="batch", framework="tests", fn="default_fn")
EVERY_JOB = JobFilter()


def step(offset: int, seq: int, kind: ReplyKind = ReplyKind.RESULT, value: object = None) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=value or f"s{seq}")


def tick(offset: int, seq: int, done: int, at_seconds: float) -> Reply:
    return Reply(
        offset=offset,
        seq=seq,
        kind=ReplyKind.PROGRESS,
        value={"current": done, "total": 10},
        produced_at=utcnow() + timedelta(seconds=at_seconds),
    )


async def snapshot(ledger: Ledger, offsets: list[int]) -> list[tuple[object, ...]]:
    """What a reader sees of each job: state, error, shown replies, kept progress."""
    seen = []
    for offset in offsets:
        record = await ledger.job(offset)
        progress = record.progress.current if record.progress is not None else None
        shown = [(r.seq, r.kind, r.value) for r in record.replies]
        seen.append((record.state, record.error, shown, progress))
    return seen


async def test_a_mixed_batch_stores_exactly_what_one_by_one_would(ledger: Ledger):
    a, b, c, d, e = [(await ledger.create_job(REQUEST))[0] for _ in range(5)]
    await ledger.store_replies([step(c, 0), step(c, 1, ReplyKind.DONE, "done")])  # c has ended
    batch = [
        step(a, 1),  # ahead of a's first missing seq: stored, not shown yet
        step(b, 0),
        step(a, 0),  # closes a's gap: a shows 0 and 1
        step(b, 0),  # the same reply twice in one batch
        step(c, 2),  # forged: after c's final reply
        step(a, 3, ReplyKind.DONE, "done"),
        step(999_999, 0),  # forged: no such job
        step(b, SEQ_WINDOW + 5),  # forged: far beyond b's first missing seq
        step(a, 2, ReplyKind.ERROR, "boom"),  # forged: a second final
        step(d, 0, ReplyKind.CANCELLED, "cancelled"),  # forged: nobody asked to cancel d
        tick(e, 0, 3, 1),
        tick(e, 0, 2, 0),  # older news than the tick before it: dropped
        step(e, 0, ReplyKind.ERROR, "failed at 0"),
        step(c, 1, ReplyKind.DONE, "done"),  # a redelivery of c's final reply
        step(a, 2),  # closes a's last gap: a is done
        step(b, 1, ReplyKind.DONE, "done"),
    ]
    outcomes = await ledger.store_replies(batch)
    assert outcomes == [
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.DUPLICATE,
        StoreOutcome.AFTER_FINAL,
        StoreOutcome.STORED,
        StoreOutcome.UNKNOWN_OFFSET,
        StoreOutcome.TOO_FAR_AHEAD,
        StoreOutcome.SECOND_FINAL,
        StoreOutcome.CANCEL_NOT_REQUESTED,
        StoreOutcome.STORED,
        StoreOutcome.STALE,
        StoreOutcome.STORED,
        StoreOutcome.DUPLICATE,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
    ]
    assert await snapshot(ledger, [a, b, c, d, e]) == [
        (JobState.DONE, None, [(0, "result", "s0"), (1, "result", "s1"), (2, "result", "s2"),
                               (3, "done", "done")], None),
        (JobState.DONE, None, [(0, "result", "s0"), (1, "done", "done")], None),
        (JobState.DONE, None, [(0, "result", "s0"), (1, "done", "done")], None),
        (JobState.QUEUED, None, [], None),
        (JobState.FAILED, "failed at 0", [(0, "error", "failed at 0")], 3),
    ]  # fmt: skip
    # the feed: every shown reply once, each job's in seq order
    feed = await ledger.feed(EVERY_JOB, 0, 100)
    assert [cursor for cursor, _ in feed] == list(range(1, 10))
    shown = {a: 4, b: 2, c: 2, e: 1}
    for offset, count in shown.items():
        assert [r.seq for _, r in feed if r.offset == offset] == list(range(count))


async def test_an_empty_failure_reason_is_kept_as_sent(ledger: Ledger):
    offset, _ = await ledger.create_job(REQUEST)
    await ledger.store_replies(
        [step(offset, 0), Reply(offset=offset, seq=1, kind="error", value="")]
    )
    record = await ledger.job(offset)
    assert (record.state, record.error) == (JobState.FAILED, "")


async def test_random_batches_store_what_one_by_one_stores(ledger: Ledger):
    """The same replies, shuffled, duplicated and forged, stored in batches of random sizes
    for some jobs and one at a time for their twins: the same outcomes, the same jobs."""
    rng = random.Random(20261130)
    jobs = [(await ledger.create_job(REQUEST))[0] for _ in range(16)]
    twins = [(await ledger.create_job(REQUEST))[0] for _ in range(16)]
    plan: list[tuple[int, int, ReplyKind, float]] = []  # (job index, seq, kind, tick time)
    for j in range(16):
        last = rng.randint(0, 5)
        final = rng.choice([ReplyKind.DONE, ReplyKind.ERROR])
        steps = [(j, seq, ReplyKind.RESULT, 0.0) for seq in range(last)] + [(j, last, final, 0.0)]
        extra = [
            (j, rng.randint(0, last + 2), rng.choice([ReplyKind.RESULT, ReplyKind.DONE]), 0.0)
            for _ in range(rng.randint(0, 3))
        ]  # duplicates, seconds finals, replies after the final
        ticks = [(j, rng.randint(0, last), ReplyKind.PROGRESS, rng.random()) for _ in range(3)]
        plan += steps + rng.sample(steps, k=len(steps) // 2) + extra + ticks
    rng.shuffle(plan)
    at = utcnow()

    def made(offsets: list[int], j: int, seq: int, kind: ReplyKind, when: float) -> Reply:
        if kind is ReplyKind.PROGRESS:
            value: object = {"current": seq, "total": 10}
            return Reply(offset=offsets[j], seq=seq, kind=kind, value=value,
                         produced_at=at + timedelta(seconds=when))  # fmt: skip
        return Reply(offset=offsets[j], seq=seq, kind=kind, value=f"{kind.value}{seq}",
                     produced_at=at)  # fmt: skip

    batched: list[StoreOutcome] = []
    i = 0
    while i < len(plan):
        size = rng.randint(1, 12)
        batched += await ledger.store_replies([made(jobs, *p) for p in plan[i : i + size]])
        i += size
    alone = [(await ledger.store_replies([made(twins, *p)]))[0] for p in plan]
    assert batched == alone
    assert StoreOutcome.DUPLICATE in alone
    assert any(outcome.refused for outcome in alone)
    assert await snapshot(ledger, jobs) == await snapshot(ledger, twins)


async def test_a_batch_is_one_transaction_on_postgres(postgres_url: str):
    ledger = PostgresLedger(postgres_url)
    await ledger.open()
    try:
        offsets = [(await ledger.create_job(REQUEST))[0] for _ in range(6)]
        batch = [step(o, seq) for seq in range(3) for o in reversed(offsets)]
        assert set(await ledger.store_replies(batch)) == {StoreOutcome.STORED}
    finally:
        await ledger.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        writers = await conn.fetch(
            "SELECT DISTINCT xmin::text FROM jobcast_replies UNION"
            " SELECT DISTINCT xmin::text FROM jobcast_jobs WHERE next_seq = 3"
        )
    finally:
        await conn.close()
    assert len(writers) == 1  # every reply and every job's bookkeeping: one transaction


async def test_two_gateways_storing_the_same_jobs_at_once_never_deadlock(postgres_url: str):
    """Gateways A and B each store batches of the same jobs' replies, in opposite job orders,
    many at once: all stored, nothing refused, and the feed is gap-free, each job in order."""
    a, b = PostgresLedger(postgres_url), PostgresLedger(postgres_url)
    await a.open()
    await b.open()
    try:
        offsets = [(await a.create_job(REQUEST))[0] for _ in range(40)]
        rng = random.Random(7)
        batches: list[tuple[PostgresLedger, list[Reply]]] = []
        for seq in range(6):
            kind = ReplyKind.DONE if seq == 5 else ReplyKind.RESULT
            replies = [step(o, seq, kind) for o in offsets]
            for chunk in range(0, 40, 8):  # each half of each chunk on the other gateway
                part = replies[chunk : chunk + 8]
                batches.append((a, part[::2] + part[1::2][::-1]))
                batches.append((b, part[::-1]))  # B repeats all of them, in reverse order
        rng.shuffle(batches)

        async def store(ledger: PostgresLedger, replies: list[Reply]) -> list[StoreOutcome]:
            return await ledger.store_replies(replies)

        outcomes = await asyncio.wait_for(
            asyncio.gather(*(store(ledger, replies) for ledger, replies in batches)), 60
        )
        counted = [outcome for batch in outcomes for outcome in batch]
        assert counted.count(StoreOutcome.STORED) == 40 * 6
        assert set(counted) <= {StoreOutcome.STORED, StoreOutcome.DUPLICATE}
        for offset in offsets:
            assert (await b.job(offset)).state is JobState.DONE
        feed = await b.feed(EVERY_JOB, 0, 1000)
        assert [cursor for cursor, _ in feed] == list(range(1, 40 * 6 + 1))
        for offset in offsets:
            assert [r.seq for _, r in feed if r.offset == offset] == list(range(6))
        assert await b.feed_end() == 40 * 6
    finally:
        await a.close()
        await b.close()

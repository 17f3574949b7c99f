"""Storing a batch of replies in PostgreSQL: judged in Python, written in one statement.

A batch costs the same few round trips whatever its size: its jobs' rows are locked and read
in one statement, every reply is judged by the plain rules (ledger/rules.py, ledger/progress.py)
in the order it would have been stored one by one, and what they let through is written in one
statement: the new replies (with their feed cursors), the jobs' bookkeeping, the kept progress.

Inside the caller's transaction; the job rows' locks make the judging exact: every writer of a
job's replies holds its row, so what was read stays true until the commit.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts import Reply, ReplyKind
from ledger.progress import NOTIFY_CHANNEL, Latest, judge_progress
from ledger.rows import BOOKKEEPING_COLUMNS, dump_value, error_text, view_from_row
from ledger.rules import JobView, StoreOutcome, after_storing, judge, needs_seqs_above

# NOTE: ORDER BY under FOR UPDATE: rows are locked in the order they are returned, so every
# gateway takes a batch's locks in offset order and two gateways storing replies of the same
# jobs cannot deadlock (cancel_job and delete_job lock one row; claims and purges skip locked).
LOCK_JOBS = (
    f"SELECT id, {BOOKKEEPING_COLUMNS} FROM jobcast_jobs WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"
)

# NOTE: read once the rows are locked, in a statement of its own (a fresh snapshot): a reply
# another gateway committed while this one waited for the lock is seen, and none can be added.
STORED_ABOVE = (
    "SELECT r.job_id, r.seq FROM unnest($1::bigint[], $2::int[]) AS g(job_id, next_seq)"
    " JOIN jobcast_replies r ON r.job_id = g.job_id AND r.seq > g.next_seq"
)
KEPT_PROGRESS = (
    "SELECT job_id, seq, produced_at FROM jobcast_job_progress WHERE job_id = ANY($1::bigint[])"
)

# NOTE: the feed row is updated only when a reply joins a prefix ($1 > 0). Its lock is held
# until the commit, so cursors commit in the order they are handed out, whichever gateway
# stores (see ledger/postgres.py, _feed): taken after the jobs' row locks, never before.
WRITE = """
WITH feed AS (
    UPDATE jobcast_feed SET next = next + $1 WHERE $1 > 0 RETURNING next - $1 AS first
), stored AS (
    INSERT INTO jobcast_replies (job_id, seq, kind, value, produced_at, recorded)
    SELECT r.job_id, r.seq, r.kind, r.value, r.produced_at, (SELECT first FROM feed) + r.place - 1
    FROM unnest($2::bigint[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[])
        AS r(job_id, seq, kind, value, produced_at, place)
), joined AS (
    UPDATE jobcast_replies r SET recorded = (SELECT first FROM feed) + o.place - 1
    FROM unnest($8::bigint[], $9::int[], $10::bigint[]) AS o(job_id, seq, place)
    WHERE r.job_id = o.job_id AND r.seq = o.seq
), moved AS (
    UPDATE jobcast_jobs j SET state = v.state, next_seq = v.next_seq, max_seq = v.max_seq,
        final_seq = v.final_seq, final_kind = v.final_kind, error = coalesce(v.error, j.error),
        updated_at = now()
    FROM unnest($11::bigint[], $12::text[], $13::int[], $14::int[], $15::int[], $16::text[],
        $17::text[]) AS v(id, state, next_seq, max_seq, final_seq, final_kind, error)
    WHERE j.id = v.id
), kept AS (
    INSERT INTO jobcast_job_progress (job_id, seq, produced_at, value)
    SELECT * FROM unnest($18::bigint[], $19::int[], $20::timestamptz[], $21::text[])
    ON CONFLICT (job_id) DO UPDATE SET seq = excluded.seq, produced_at = excluded.produced_at,
        value = excluded.value
    RETURNING job_id
)
SELECT pg_notify($22, job_id::text) FROM kept
"""
"""A stored reply rings followers through the table's trigger; a kept progress here, on
commit too (PostgreSQL folds one transaction's identical notifications into one)."""


@dataclass
class _Job:
    """One job of the batch while it is judged: its bookkeeping as the batch moves it."""

    view: JobView
    first_next: int
    """next_seq before the batch: replies from here up to the new next_seq join the feed."""
    above: set[int] = field(default_factory=set)
    """Seqs stored above next_seq (out of order), the batch's included."""
    latest: Latest | None = None
    error: str | None = None
    moved: bool = False


async def store_batch(conn: Any, replies: Sequence[Reply]) -> list[StoreOutcome]:
    """Store `replies` in the caller's transaction; outcomes in the same order."""
    offsets = sorted({reply.offset for reply in replies})
    jobs: dict[int, _Job] = {}
    for row in await conn.fetch(LOCK_JOBS, offsets):
        view = view_from_row(tuple(row)[1:])
        jobs[int(row["id"])] = _Job(view, view.next_seq)
    gapped = [
        (o, job.view.next_seq) for o, job in jobs.items() if job.view.max_seq >= job.first_next
    ]
    if gapped:
        rows = await conn.fetch(STORED_ABOVE, [o for o, _ in gapped], [n for _, n in gapped])
        for row in rows:
            jobs[int(row["job_id"])].above.add(int(row["seq"]))
    ticking = sorted({r.offset for r in replies if r.kind is ReplyKind.PROGRESS} & jobs.keys())
    if ticking:
        for row in await conn.fetch(KEPT_PROGRESS, ticking):
            jobs[int(row["job_id"])].latest = (int(row["seq"]), row["produced_at"])
    # NOTE: judged in offset order, each job's replies in the order they arrived (a stable
    # sort), exactly as storing them one by one would.
    order = sorted(range(len(replies)), key=lambda i: replies[i].offset)
    outcomes: dict[int, StoreOutcome] = {}
    new: list[Reply] = []
    ticks: dict[int, Reply] = {}
    for i in order:
        reply = replies[i]
        job = jobs.get(reply.offset)
        if reply.kind is ReplyKind.PROGRESS:
            outcomes[i] = _tick(job, reply, ticks)
        else:
            outcomes[i] = _step(job, reply, new)
    await _write(conn, jobs, new, ticks)
    return [outcomes[i] for i in range(len(replies))]


def _tick(job: _Job | None, reply: Reply, ticks: dict[int, Reply]) -> StoreOutcome:
    refused = judge_progress(
        None if job is None else job.view, None if job is None else job.latest, reply
    )
    if refused is not None:
        return refused
    assert job is not None
    job.latest = (reply.seq, reply.produced_at)
    ticks[reply.offset] = reply
    return StoreOutcome.STORED


def _step(job: _Job | None, reply: Reply, new: list[Reply]) -> StoreOutcome:
    refused = judge(None if job is None else job.view, reply)
    if refused is not None:
        return refused
    assert job is not None
    view = job.view
    if reply.seq < view.next_seq or reply.seq in job.above:
        return StoreOutcome.DUPLICATE
    above: list[int] = []
    if needs_seqs_above(view, reply):
        above = sorted(seq for seq in job.above if seq > reply.seq)
    job.view = after_storing(view, reply, above)
    job.above.add(reply.seq)
    job.above = {seq for seq in job.above if seq >= job.view.next_seq}
    error = error_text(reply)
    if error is not None:  # an empty reason too: it is what the worker sent
        job.error = error
    job.moved = True
    new.append(reply)
    return StoreOutcome.STORED


async def _write(
    conn: Any, jobs: dict[int, _Job], new: list[Reply], ticks: dict[int, Reply]
) -> None:
    """One statement for everything the batch changes (nothing when it changes nothing)."""
    moved = [(offset, job) for offset, job in sorted(jobs.items()) if job.moved]
    if not moved and not ticks:
        return
    # NOTE: feed cursors in (offset, seq) order: every seq that joined its job's prefix.
    joining = [(o, seq) for o, job in moved for seq in range(job.first_next, job.view.next_seq)]
    place = {pair: n for n, pair in enumerate(joining, start=1)}
    inserted = {(r.offset, r.seq) for r in new}
    earlier = [(pair, n) for pair, n in place.items() if pair not in inserted]
    await conn.execute(
        WRITE,
        len(joining),
        [r.offset for r in new],
        [r.seq for r in new],
        [r.kind.value for r in new],
        [dump_value(r) for r in new],
        [r.produced_at for r in new],
        [place.get((r.offset, r.seq)) for r in new],
        [o for (o, _), _ in earlier],
        [seq for (_, seq), _ in earlier],
        [n for _, n in earlier],
        [o for o, _ in moved],
        [job.view.state.value for _, job in moved],
        [job.view.next_seq for _, job in moved],
        [job.view.max_seq for _, job in moved],
        [job.view.final_seq for _, job in moved],
        [_kind(job.view.final_kind) for _, job in moved],
        [job.error for _, job in moved],
        list(ticks),
        [r.seq for r in ticks.values()],
        [r.produced_at for r in ticks.values()],
        [dump_value(r) for r in ticks.values()],
        NOTIFY_CHANNEL,
    )


def _kind(kind: ReplyKind | None) -> str | None:
    return None if kind is None else kind.value

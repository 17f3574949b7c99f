"""The PostgreSQL ledger's batches and retention: many jobs recorded at once, finished jobs
purged or deleted, and purged offsets remembered (so they answer 410, not 404).

Functions of a connection inside a transaction, called by PostgresLedger.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts import JobRequest, JobState, UnknownOffsetError
from contracts.errors import JobNotFinishedError, OffsetExpiredError
from ledger.batches import BatchItems, fill, repeats
from ledger.retention import runs

# NOTE: purged offsets as runs (first, last), as in the SQLite ledger (sqlite_lifecycle.py).
# Offsets here have gaps anyway (a sequence hands out numbers a rolled-back or discarded job
# never used), so "below the next offset" cannot tell purged from never handed out; the runs do.
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobcast_purged (first BIGINT PRIMARY KEY, last BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS jobcast_purged_by_last ON jobcast_purged (last);
"""

PURGE_LOCK = 7420918
"""Advisory lock a purge transaction tries first: one gateway purges at a time."""
PURGED_LOCK = 7420919
"""Advisory lock around writes to jobcast_purged (a purge and a DELETE /jobs may meet there)."""


async def create_jobs(
    conn: Any, items: BatchItems, due: Sequence[datetime | None]
) -> list[tuple[int, bool]]:
    """Record a batch in the caller's transaction: every new job, or (a key reused) none."""
    keys = [key for _, key in items if key is not None]
    known: dict[str, tuple[int, JobRequest]] = {}
    if keys:
        rows = await conn.fetch(
            "SELECT idempotency_key, id, request FROM jobcast_jobs"
            " WHERE idempotency_key = ANY($1::text[])",
            keys,
        )
        known = {
            r["idempotency_key"]: (int(r["id"]), JobRequest.model_validate_json(r["request"]))
            for r in rows
        }
    placed = repeats(items, known)
    new = placed.count(None)
    fresh = [
        int(r[0])
        for r in await conn.fetch(
            "SELECT nextval('jobcast_offsets') FROM generate_series(1, $1)", new
        )
    ]
    filled = fill(placed, fresh)
    made = [
        (offset, request, key, at)
        for (offset, created), (request, key), at in zip(filled, items, due, strict=True)
        if created
    ]
    if made:
        await conn.execute(
            "INSERT INTO jobcast_jobs (id, request, fn, state, idempotency_key, due_at)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
            " $5::text[], $6::timestamptz[])",
            [o for o, _, _, _ in made],
            [r.model_dump_json() for _, r, _, _ in made],
            [r.fn for _, r, _, _ in made],
            [(JobState.QUEUED if at is None else JobState.SCHEDULED).value for *_, at in made],
            [k for _, _, k, _ in made],
            [at for *_, at in made],
        )
        tagged = [(tag, o) for o, r, _, _ in made for tag in dict.fromkeys(r.tags)]
        if tagged:
            await conn.execute(
                "INSERT INTO jobcast_job_tags (tag, job_id)"
                " SELECT * FROM unnest($1::text[], $2::bigint[])",
                [t for t, _ in tagged],
                [o for _, o in tagged],
            )
    return filled


async def discard_jobs(conn: Any, offsets: Sequence[int]) -> None:
    """Forget jobs that never reached the broker (as discard_job does)."""
    await conn.execute(
        "DELETE FROM jobcast_jobs WHERE id = ANY($1::bigint[]) AND NOT EXISTS"
        " (SELECT 1 FROM jobcast_replies WHERE job_id = jobcast_jobs.id)",
        list(offsets),
    )


async def purge_finished(conn: Any, before: datetime, limit: int) -> int | None:
    """Purge up to `limit` jobs that ended before `before`, in the caller's transaction; None
    when another gateway is purging."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK):
        return None
    # NOTE: SKIP LOCKED: a job whose row a recorder holds right now (a late reply) is left
    # for the next round instead of waiting for it, or deadlocking with it.
    rows = await conn.fetch(
        "SELECT id FROM jobcast_jobs WHERE state = ANY($1::text[]) AND updated_at < $2"
        " LIMIT $3 FOR UPDATE SKIP LOCKED",
        final_states(),
        before,
        limit,
    )
    await _forget(conn, [int(r["id"]) for r in rows])
    return len(rows)


async def delete_job(conn: Any, offset: int) -> None:
    """DELETE /jobs/{offset}, in the caller's transaction: a finished job, now."""
    state = await conn.fetchval("SELECT state FROM jobcast_jobs WHERE id = $1 FOR UPDATE", offset)
    if state is None:
        raise await missing(conn, offset)
    if not JobState(state).is_final:
        raise JobNotFinishedError(offset)
    await _forget(conn, [offset])


async def missing(conn: Any, offset: int) -> UnknownOffsetError:
    """Why `offset` has no job: purged (OffsetExpiredError) or never handed out."""
    found = await conn.fetchval(
        "SELECT 1 FROM jobcast_purged WHERE first <= $1 AND last >= $1 LIMIT 1", offset
    )
    return UnknownOffsetError(offset) if found is None else OffsetExpiredError(offset)


def final_states() -> list[str]:
    return [state.value for state in JobState if state.is_final]


async def _forget(conn: Any, offsets: list[int]) -> None:
    """Delete these jobs (their replies and tags go with them: ON DELETE CASCADE) and
    remember their offsets as purged."""
    if not offsets:
        return
    await conn.execute("DELETE FROM jobcast_jobs WHERE id = ANY($1::bigint[])", offsets)
    await conn.execute("SELECT pg_advisory_xact_lock($1)", PURGED_LOCK)
    for first, last in runs(offsets):
        below = await conn.fetchval("SELECT first FROM jobcast_purged WHERE last = $1", first - 1)
        if below is not None:
            await conn.execute("DELETE FROM jobcast_purged WHERE first = $1", below)
            first = int(below)
        above = await conn.fetchval("SELECT last FROM jobcast_purged WHERE first = $1", last + 1)
        if above is not None:
            await conn.execute("DELETE FROM jobcast_purged WHERE first = $1", last + 1)
            last = int(above)
        await conn.execute(
            "INSERT INTO jobcast_purged (first, last) VALUES ($1, $2)"
            " ON CONFLICT (first) DO UPDATE SET last = greatest(jobcast_purged.last, $2)",
            first,
            last,
        )

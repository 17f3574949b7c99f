"""The PostgreSQL ledger, for several gateways sharing one database."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from contracts import (
    JobRecord,
    JobRequest,
    JobState,
    LedgerUnavailableError,
    Reply,
    UnknownOffsetError,
)
from contracts.errors import LedgerRejectedError
from contracts.listing import JobFilter, JobRow
from contracts.principals import KeyRecord
from ledger import postgres_lifecycle as lifecycle
from ledger.batches import BatchItems
from ledger.idempotency import MIGRATE_POSTGRES, scoped, scoped_items, unscoping
from ledger.keys import KEY_COLUMNS, KeyExistsError, key_from_row
from ledger.keys import POSTGRES_SCHEMA as KEYS_SCHEMA
from ledger.listing import completed_series, feed_item, feed_query, list_query, row_from_db
from ledger.notifications import ReplyListener
from ledger.postgres_jobs import JobGroups, NewJob
from ledger.postgres_replies import store_batch
from ledger.progress import (
    POSTGRES_PROGRESS_AFTER,
    postgres_row,
    progress_reply,
    report,
)
from ledger.progress import POSTGRES_SCHEMA as PROGRESS_SCHEMA
from ledger.rows import (
    BOOKKEEPING_COLUMNS,
    JOB_COLUMNS,
    PREFIX_REPLIES,
    REPLY_COLUMNS,
    job_from_row,
    reply_from_row,
    view_from_row,
)
from ledger.rules import (
    CancelOutcome,
    StoreOutcome,
    cancelled_reply,
    judge_cancel,
)
from ledger.steering import RELEASE_LEASE_SECONDS

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS jobcast_offsets MINVALUE 0 START 0;
CREATE TABLE IF NOT EXISTS jobcast_jobs (
    id BIGINT PRIMARY KEY DEFAULT nextval('jobcast_offsets'),
    request TEXT NOT NULL,
    fn TEXT NOT NULL,
    state TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT -1,
    final_seq INTEGER,
    final_kind TEXT
);
CREATE TABLE IF NOT EXISTS jobcast_replies (
    job_id BIGINT NOT NULL REFERENCES jobcast_jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    produced_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE OR REPLACE FUNCTION jobcast_reply_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobcast_replies', NEW.job_id::text);
    RETURN NULL;
END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jobcast_reply_stored'
                   AND tgrelid = 'jobcast_replies'::regclass) THEN
        CREATE TRIGGER jobcast_reply_stored AFTER INSERT ON jobcast_replies
            FOR EACH ROW EXECUTE FUNCTION jobcast_reply_stored();
    END IF;
END $$;
"""
"""The trigger wakes followers on every gateway (ledger/notifications.py): whoever stores a
reply, every listener hears its offset once the transaction commits (PostgreSQL folds the
identical notifications of one transaction into one)."""

# NOTE: ledgers written before the bookkeeping columns existed get them, filled in from the
# replies they hold (a job's replies were then recorded in order).
NEEDS_MIGRATION = """
SELECT NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_name = 'jobcast_jobs' AND column_name = 'next_seq')
"""
MIGRATION = """
ALTER TABLE jobcast_jobs ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN max_seq INTEGER NOT NULL DEFAULT -1,
    ADD COLUMN final_seq INTEGER,
    ADD COLUMN final_kind TEXT;
UPDATE jobcast_jobs j SET
    max_seq = coalesce((SELECT max(seq) FROM jobcast_replies WHERE job_id = j.id), -1),
    next_seq = coalesce((SELECT max(seq) FROM jobcast_replies WHERE job_id = j.id), -1) + 1,
    final_seq = (SELECT seq FROM jobcast_replies WHERE job_id = j.id AND kind != 'result'),
    final_kind = (SELECT kind FROM jobcast_replies WHERE job_id = j.id AND kind != 'result');
"""

# NOTE: the jobs list and the feed (ledger/listing.py): an index behind every filter, a tags
# table, and the feed cursor `recorded`, handed out from the one `jobcast_feed` row (see _feed).
LISTING_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobcast_job_tags (
    tag TEXT NOT NULL,
    job_id BIGINT NOT NULL REFERENCES jobcast_jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, job_id)
);
CREATE INDEX IF NOT EXISTS jobcast_jobs_by_state ON jobcast_jobs (state, id);
CREATE INDEX IF NOT EXISTS jobcast_jobs_by_fn ON jobcast_jobs (fn, id);
CREATE INDEX IF NOT EXISTS jobcast_jobs_by_created ON jobcast_jobs (created_at);
CREATE INDEX IF NOT EXISTS jobcast_jobs_by_updated ON jobcast_jobs (state, updated_at);
CREATE TABLE IF NOT EXISTS jobcast_feed (next BIGINT NOT NULL);
INSERT INTO jobcast_feed (next) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM jobcast_feed);
ALTER TABLE jobcast_replies ADD COLUMN IF NOT EXISTS recorded BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS jobcast_replies_by_recorded ON jobcast_replies (recorded);
CREATE INDEX IF NOT EXISTS jobcast_replies_unfed ON jobcast_replies (job_id, seq)
    WHERE recorded IS NULL;
"""

# NOTE: cancel requests and delayed starts (ledger/steering.py), also in ledgers older than them.
STEERING_SCHEMA = """
ALTER TABLE jobcast_jobs ADD COLUMN IF NOT EXISTS cancel_requested BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE jobcast_jobs ADD COLUMN IF NOT EXISTS due_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS jobcast_jobs_due ON jobcast_jobs (due_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS jobcast_jobs_cancel_pending ON jobcast_jobs (id)
    WHERE cancel_requested AND state NOT IN ('done', 'failed', 'cancelled');
"""

TABLES = {"jobs": "jobcast_jobs", "replies": "jobcast_replies", "tags": "jobcast_job_tags"}

# NOTE: asyncpg raises these (and OSError) when the server is gone or restarting.
_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TimeoutError,
)


_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, statement timeout
    asyncpg.exceptions.InsufficientResourcesError,  # disk full, too many connections
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialization failure
)
"""Errors that say the database cannot take writes now (not that this write is wrong)."""


class PostgresLedger:
    """Ledger in PostgreSQL: offsets from a sequence, so every gateway hands out unique ones."""

    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._groups = JobGroups(self._connection)

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                command_timeout=10,
                reset=_nothing_to_reset,
            )
        except _DOWN as exc:
            raise LedgerUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
        # NOTE: an advisory lock keeps two gateways starting together from racing on DDL.
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7420917)")
            if await conn.fetchval("SELECT to_regclass('jobcast_jobs') IS NOT NULL") and (
                await conn.fetchval(NEEDS_MIGRATION)
            ):
                await conn.execute(MIGRATION)
            await conn.execute(SCHEMA)
            await conn.execute(lifecycle.SCHEMA)
            await conn.execute(PROGRESS_SCHEMA)
            await conn.execute(LISTING_SCHEMA)
            await conn.execute(STEERING_SCHEMA)
            await conn.execute(KEYS_SCHEMA)
            await _scope_idempotency_keys(conn)
            await _feed(conn, None)  # replies stored before the feed existed get their cursors

    def reply_listener(
        self, on_stored: Callable[[int], None], on_connected: Callable[[], None]
    ) -> ReplyListener:
        """A listener (start it) calling `on_stored(offset)` whenever any gateway stores a
        reply, and `on_connected()` on each (re)connect, when notifications may have been missed."""
        return ReplyListener(self._dsn, on_stored, on_connected)

    async def close(self) -> None:
        await self._groups.close()
        if self._pool is not None:
            await self._pool.close()

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def create_job(
        self,
        request: JobRequest,
        idempotency_key: str | None = None,
        due_at: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[int, bool]:
        job = NewJob(request, scoped(owner, idempotency_key), due_at, owner)
        return await unscoping(lambda: self._groups.create(job))

    async def cancel_job(self, offset: int) -> tuple[CancelOutcome, JobState]:
        try:
            async with self._connection() as conn, conn.transaction():
                row = await conn.fetchrow(
                    f"SELECT {BOOKKEEPING_COLUMNS} FROM jobcast_jobs WHERE id = $1 FOR UPDATE",
                    offset,
                )
                if row is None:
                    raise UnknownOffsetError(offset)
                view = view_from_row(row)
                outcome = judge_cancel(view)
                if outcome in (CancelOutcome.ENDED, CancelOutcome.REQUESTED):
                    await conn.execute(
                        "UPDATE jobcast_jobs SET cancel_requested = true, due_at = NULL,"
                        " updated_at = now() WHERE id = $1",
                        offset,
                    )
                if outcome is CancelOutcome.ENDED:
                    await store_batch(conn, [cancelled_reply(offset, view)])
                state = await conn.fetchval("SELECT state FROM jobcast_jobs WHERE id = $1", offset)
        except _TRANSIENT as exc:
            raise LedgerUnavailableError(f"PostgreSQL unavailable: {exc}") from exc
        return outcome, JobState(state)

    async def claim_due(self, limit: int) -> list[tuple[int, JobRequest]]:
        # NOTE: SKIP LOCKED: gateways claiming at once each take other jobs, none waits; the
        # lease (due_at moved ahead) keeps a claimed job from the others until it is marked
        # released, or, if its publish was not confirmed, until the lease runs out.
        async with self._connection() as conn:
            rows = await conn.fetch(
                "UPDATE jobcast_jobs SET due_at = now() + make_interval(secs => $2)"
                " WHERE id IN (SELECT id FROM jobcast_jobs WHERE state = 'scheduled'"
                " AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " RETURNING id, request",
                limit,
                RELEASE_LEASE_SECONDS,
            )
        return [(int(r["id"]), JobRequest.model_validate_json(r["request"])) for r in rows]

    async def mark_released(self, offset: int) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE jobcast_jobs SET state = 'queued', due_at = NULL, updated_at = now()"
                " WHERE id = $1 AND state = 'scheduled'",
                offset,
            )

    async def release_again(self, offset: int) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE jobcast_jobs SET state = 'scheduled', due_at = now(), updated_at = now()"
                " WHERE id = $1 AND state = 'queued' AND NOT EXISTS"
                " (SELECT 1 FROM jobcast_replies WHERE job_id = $1)",
                offset,
            )

    async def discard_job(self, offset: int) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "DELETE FROM jobcast_jobs WHERE id = $1 AND NOT EXISTS"
                " (SELECT 1 FROM jobcast_replies WHERE job_id = $1)",
                offset,
            )

    async def store_replies(self, replies: Sequence[Reply]) -> list[StoreOutcome]:
        try:
            async with self._connection() as conn, conn.transaction():
                return await store_batch(conn, replies)
        except (asyncpg.PostgresError, OverflowError, ValueError) as exc:
            if isinstance(exc, _TRANSIENT):
                raise LedgerUnavailableError(f"PostgreSQL unavailable: {exc}") from exc
            raise LedgerRejectedError(
                f"PostgreSQL refused the write: {type(exc).__name__}: {exc}"
            ) from exc

    async def replies(
        self, offset: int, after_seq: int = -1, *, with_progress: bool = False
    ) -> list[Reply]:
        tail = POSTGRES_PROGRESS_AFTER if with_progress else ""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {REPLY_COLUMNS} FROM jobcast_replies WHERE job_id = $1 AND seq > $2"
                f" AND {PREFIX_REPLIES.format(jobs='jobcast_jobs', offset='$1')}{tail}"
                " ORDER BY seq",
                offset,
                after_seq,
            )
            if not rows and not await _job_exists(conn, offset):
                raise await lifecycle.missing(conn, offset)
        return [reply_from_row(offset, row) for row in rows]

    async def job(self, offset: int) -> JobRecord:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {JOB_COLUMNS} FROM jobcast_jobs WHERE id = $1",
                offset,
            )
            if row is None:
                raise await lifecycle.missing(conn, offset)
            rows = await conn.fetch(
                f"SELECT {REPLY_COLUMNS} FROM jobcast_replies WHERE job_id = $1"
                f" AND {PREFIX_REPLIES.format(jobs='jobcast_jobs', offset='$1')} ORDER BY seq",
                offset,
            )
            kept = await postgres_row(conn, offset)
        record = job_from_row(offset, row, rows)
        record.progress = report(progress_reply(offset, kept))
        return record

    async def progress(self, offset: int) -> Reply | None:
        async with self._connection() as conn:
            return progress_reply(offset, await postgres_row(conn, offset))

    async def pending_cancels(self, limit: int) -> list[int]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT id FROM jobcast_jobs WHERE cancel_requested"
                " AND state NOT IN ('done', 'failed', 'cancelled')"
                " ORDER BY id LIMIT $1",
                limit,
            )
        return [row["id"] for row in rows]

    async def list_jobs(self, found: JobFilter, before: int | None, limit: int) -> list[JobRow]:
        sql, params = list_query(_dollar, TABLES, found, before, limit, _aware)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [row_from_db(row) for row in rows]

    async def feed(self, found: JobFilter, after: int, limit: int) -> list[tuple[int, Reply]]:
        sql, params = feed_query(_dollar, TABLES, found, after, limit, _aware)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [feed_item(row) for row in rows]

    async def feed_end(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT next - 1 FROM jobcast_feed"))

    async def stats(self, minutes: int) -> tuple[dict[JobState, int], list[int]]:
        async with self._connection() as conn:
            now = await conn.fetchval("SELECT now()")
            since = now - timedelta(minutes=minutes)
            counts = {
                state: await conn.fetchval(
                    "SELECT count(*) FROM jobcast_jobs WHERE state = $1 AND updated_at >= $2",
                    state.value,
                    since,
                )
                for state in JobState
            }
            buckets = await conn.fetch(
                "SELECT floor(extract(epoch FROM ($1 - updated_at)) / 60)::int AS ago, count(*)"
                " FROM jobcast_jobs WHERE state = $2 AND updated_at >= $3 GROUP BY ago",
                now,
                JobState.DONE.value,
                since,
            )
        return counts, completed_series([(r[0], r[1]) for r in buckets], minutes)

    # -- batches and retention (ledger/postgres_lifecycle.py) ------------------------------

    async def create_jobs(
        self, items: BatchItems, due: Sequence[datetime | None], owner: str | None = None
    ) -> list[tuple[int, bool]]:
        return await unscoping(lambda: self._create_jobs(scoped_items(items, owner), due, owner))

    async def _create_jobs(
        self, items: BatchItems, due: Sequence[datetime | None], owner: str | None
    ) -> list[tuple[int, bool]]:
        """create_jobs with the keys in their stored form (ledger/idempotency.py)."""
        # NOTE: one transaction for the batch. Two batches racing for one new key: the loser's
        # INSERT fails on the key's uniqueness, and it tries again, now seeing the winner's job.
        for attempt in range(3):
            try:
                async with self._connection() as conn, conn.transaction():
                    filled = await lifecycle.create_jobs(conn, items, due)
                    made = [offset for offset, created in filled if created]
                    if owner is not None and made:  # in the same transaction as the jobs
                        await conn.execute(
                            "UPDATE jobcast_jobs SET owner = $1 WHERE id = ANY($2::bigint[])",
                            owner,
                            made,
                        )
                    return filled
            except asyncpg.UniqueViolationError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- API keys and owners (ledger/keys.py) -----------------------------------------------

    async def job_owner(self, offset: int) -> str | None:
        async with self._connection() as conn:
            owner = await conn.fetchval("SELECT owner FROM jobcast_jobs WHERE id = $1", offset)
        return None if owner is None else str(owner)

    async def add_key(self, name: str, digest: str, admin: bool) -> KeyRecord:
        async with self._connection() as conn:
            try:
                row = await conn.fetchrow(
                    "INSERT INTO jobcast_api_keys (name, digest, admin) VALUES ($1, $2, $3)"
                    f" RETURNING {KEY_COLUMNS}",
                    name,
                    digest,
                    admin,
                )
            except asyncpg.UniqueViolationError:
                raise KeyExistsError(name) from None
        return key_from_row(row)

    async def keys(self) -> list[KeyRecord]:
        async with self._connection() as conn:
            rows = await conn.fetch(f"SELECT {KEY_COLUMNS} FROM jobcast_api_keys ORDER BY name")
        return [key_from_row(row) for row in rows]

    async def revoke_key(self, name: str) -> bool:
        async with self._connection() as conn:
            done = await conn.execute(
                "UPDATE jobcast_api_keys SET revoked_at = now()"
                " WHERE name = $1 AND revoked_at IS NULL",
                name,
            )
        return bool(done != "UPDATE 0")

    async def key_by_digest(self, digest: str) -> KeyRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM jobcast_api_keys WHERE digest = $1", digest
            )
        return None if row is None else key_from_row(row)

    async def discard_jobs(self, offsets: Sequence[int]) -> None:
        async with self._connection() as conn:
            await lifecycle.discard_jobs(conn, offsets)

    async def delete_job(self, offset: int) -> None:
        async with self._connection() as conn, conn.transaction():
            await lifecycle.delete_job(conn, offset)

    async def purge_finished(self, before: datetime, limit: int) -> int | None:
        try:
            async with self._connection() as conn, conn.transaction():
                return await lifecycle.purge_finished(conn, before, limit)
        except _TRANSIENT as exc:
            raise LedgerUnavailableError(f"PostgreSQL unavailable: {exc}") from exc

    async def reclaim_space(self) -> None:
        """Nothing to do: autovacuum makes the space of deleted rows reusable."""

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise LedgerUnavailableError("the PostgreSQL ledger is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DOWN as exc:
            raise LedgerUnavailableError(f"PostgreSQL unavailable: {exc}") from exc


async def _scope_idempotency_keys(conn: Any) -> None:
    """Once per ledger: owned keys stored before keys were scoped get their owner's prefix."""
    await conn.execute("CREATE TABLE IF NOT EXISTS jobcast_migrations (name TEXT PRIMARY KEY)")
    done = await conn.fetchval(
        "SELECT true FROM jobcast_migrations WHERE name = 'scoped_idempotency_keys'"
    )
    if not done:
        await conn.execute(MIGRATE_POSTGRES)
        await conn.execute(
            "INSERT INTO jobcast_migrations (name) VALUES ('scoped_idempotency_keys')"
        )


async def _nothing_to_reset(_conn: Any) -> None:
    """The pool's reset: none needed, so none of the four statements asyncpg's default sends
    on every release."""
    # NOTE: the ledger changes no session state on pooled connections (no SET, LISTEN, cursor
    # or session advisory lock: its locks are transaction-scoped); asyncpg still rolls back a
    # transaction left open before it calls this.


async def _job_exists(conn: Any, offset: int) -> bool:
    return await conn.fetchval("SELECT 1 FROM jobcast_jobs WHERE id = $1", offset) is not None


def _dollar(n: int) -> str:
    return f"${n}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _feed(conn: Any, offsets: set[int] | None) -> None:
    """Give the replies that joined their job's prefix (of `offsets`; None: of every job)
    their feed cursors, in (job, seq) order, from the `jobcast_feed` row.

    Used at open, for replies stored before the feed existed; a store hands out the cursors
    of the replies it joins in its own statement, under the same lock (postgres_replies.py)."""
    joined = await conn.fetch(
        "SELECT r.job_id, r.seq FROM jobcast_replies r JOIN jobcast_jobs j ON j.id = r.job_id"
        " WHERE r.recorded IS NULL AND r.seq < j.next_seq"
        " AND ($1::bigint[] IS NULL OR r.job_id = ANY($1)) ORDER BY r.job_id, r.seq"
        # NOTE: locked and checked again once free: a gateway back-filling at start (None)
        # holds no job's row, so it must not give a reply a second cursor another gateway
        # has just given it
        " FOR UPDATE OF r",
        None if offsets is None else sorted(offsets),
    )
    if not joined:
        return
    # NOTE: the row lock on jobcast_feed is held until this transaction commits, so cursors
    # commit in the order they are handed out, whichever gateway stores: a follower that has
    # read cursor n never later finds a lower one appear (a plain sequence could commit 7
    # after 8). Taken last in the transaction, after the jobs' row locks, so it is held only
    # for the commit and cannot deadlock with them.
    first = await conn.fetchval(
        "UPDATE jobcast_feed SET next = next + $1 RETURNING next - $1", len(joined)
    )
    await conn.execute(
        "UPDATE jobcast_replies r SET recorded = $1 + f.n - 1"
        " FROM unnest($2::bigint[], $3::int[]) WITH ORDINALITY AS f(job_id, seq, n)"
        " WHERE r.job_id = f.job_id AND r.seq = f.seq",
        first,
        [row["job_id"] for row in joined],
        [row["seq"] for row in joined],
    )

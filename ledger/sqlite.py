"""The SQLite ledger: one file in WAL mode, writes group-committed by one writer thread."""

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from contracts import (
    IdempotencyConflictError,
    JobRecord,
    JobRequest,
    JobState,
    LedgerUnavailableError,
    Reply,
    ReplyKind,
    UnknownOffsetError,
)
from contracts.errors import JobNotFinishedError, LedgerRejectedError
from contracts.listing import JobFilter, JobRow
from contracts.messages import SEQ_WINDOW, utcnow
from contracts.principals import KeyRecord
from ledger import sqlite_lifecycle as lifecycle
from ledger.batches import BatchItems
from ledger.bookkeeping import Views
from ledger.idempotency import MIGRATE_SQLITE, scoped, scoped_items, unscoping
from ledger.keys import KEY_COLUMNS, SQLITE_OWNER_INDEX, KeyExistsError, key_from_row
from ledger.keys import SQLITE_SCHEMA as KEYS_SCHEMA
from ledger.listing import (
    completed_series,
    feed_item,
    feed_query,
    list_query,
    row_from_db,
    utc_text,
)
from ledger.progress import (
    SQLITE_PROGRESS_AFTER,
    progress_reply,
    report,
    sqlite_row,
    sqlite_store,
)
from ledger.progress import SQLITE_SCHEMA as PROGRESS_SCHEMA
from ledger.rows import (
    BOOKKEEPING_COLUMNS,
    JOB_COLUMNS,
    PREFIX_REPLIES,
    REPLY_COLUMNS,
    dump_value,
    error_text,
    job_from_row,
    reply_from_row,
    view_from_row,
)
from ledger.rules import (
    CancelOutcome,
    JobView,
    StoreOutcome,
    after_storing,
    cancelled_reply,
    judge,
    judge_cancel,
    needs_seqs_above,
)
from ledger.steering import RELEASE_LEASE_SECONDS, due_text

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (next INTEGER NOT NULL);
INSERT INTO offsets (next) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM offsets);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    request TEXT NOT NULL,
    fn TEXT NOT NULL,
    state TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT -1,
    final_seq INTEGER,
    final_kind TEXT
);
CREATE TABLE IF NOT EXISTS replies (
    job_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    produced_at TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""

# NOTE: ledgers written before the bookkeeping columns existed get them, filled in from the
# replies they hold (a job's replies were then always recorded in order, by one gateway).
MIGRATION = """
ALTER TABLE jobs ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_seq INTEGER NOT NULL DEFAULT -1;
ALTER TABLE jobs ADD COLUMN final_seq INTEGER;
ALTER TABLE jobs ADD COLUMN final_kind TEXT;
UPDATE jobs SET
    max_seq = coalesce((SELECT max(seq) FROM replies WHERE job_id = jobs.id), -1),
    next_seq = coalesce((SELECT max(seq) FROM replies WHERE job_id = jobs.id), -1) + 1,
    final_seq = (SELECT seq FROM replies WHERE job_id = jobs.id AND kind != 'result'),
    final_kind = (SELECT kind FROM replies WHERE job_id = jobs.id AND kind != 'result');
"""

# NOTE: the jobs list and the feed (ledger/listing.py): an index behind every filter, a tags
# table, and the feed cursor: `replies.recorded`, handed out from `feed` as replies join their
# job's prefix, in the one writer's commit order.
LISTING_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_tags (
    tag TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    PRIMARY KEY (tag, job_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_by_fn ON jobs (fn, id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs (state, updated_at);
CREATE TABLE IF NOT EXISTS feed (next INTEGER NOT NULL);
INSERT INTO feed (next) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM feed);
CREATE UNIQUE INDEX IF NOT EXISTS replies_by_recorded ON replies (recorded);
CREATE INDEX IF NOT EXISTS replies_unfed ON replies (job_id, seq) WHERE recorded IS NULL;
"""

MAX_BATCH = 512


class SqliteLedger:
    """Ledger in one SQLite file.

    Every write goes through a single writer thread that commits whatever has queued up
    in one transaction (group commit): one fsync serves many writers under load, none waits
    under no load.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="ledger-reader")
        self._local = threading.local()
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        await self._write(_create_schema)

    async def close(self) -> None:
        if self._flushing is not None:
            await self._flushing
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)

    async def ping(self) -> None:
        await self._write(lambda conn: conn.execute("SELECT 1 FROM offsets").fetchone())

    async def create_job(
        self,
        request: JobRequest,
        idempotency_key: str | None = None,
        due_at: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[int, bool]:
        body = request.model_dump_json()
        state = JobState.QUEUED if due_at is None else JobState.SCHEDULED
        due = None if due_at is None else due_text(due_at)
        sent, idempotency_key = idempotency_key, scoped(owner, idempotency_key)

        def op(conn: sqlite3.Connection) -> tuple[int, bool]:
            if idempotency_key is not None:
                row = conn.execute(
                    "SELECT id, request FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    assert sent is not None
                    return _same_request(row, body, sent), False
            (offset,) = conn.execute(
                "UPDATE offsets SET next = next + 1 RETURNING next - 1"
            ).fetchone()
            now = utcnow().isoformat()
            conn.execute(
                "INSERT INTO jobs (id, request, fn, state, idempotency_key, created_at, updated_at,"
                " due_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (offset, body, request.fn, state, idempotency_key, now, now, due, owner),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO job_tags (tag, job_id) VALUES (?, ?)",
                [(tag, offset) for tag in request.tags],
            )
            return offset, True

        return await self._write(op)  # type: ignore[no-any-return]

    async def cancel_job(self, offset: int) -> tuple[CancelOutcome, JobState]:
        def op(conn: sqlite3.Connection) -> tuple[CancelOutcome, JobState]:
            row = conn.execute(
                f"SELECT {BOOKKEEPING_COLUMNS} FROM jobs WHERE id = ?", (offset,)
            ).fetchone()
            if row is None:
                raise UnknownOffsetError(offset)
            view = view_from_row(row)
            outcome = judge_cancel(view)
            if outcome in (CancelOutcome.ENDED, CancelOutcome.REQUESTED):
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1, due_at = NULL, updated_at = ?"
                    " WHERE id = ?",
                    (utcnow().isoformat(), offset),
                )
            if outcome is CancelOutcome.ENDED:
                _store_one(conn, cancelled_reply(offset, view))
                _feed(conn, {offset})
            (state,) = conn.execute("SELECT state FROM jobs WHERE id = ?", (offset,)).fetchone()
            return outcome, JobState(state)

        return await self._write(op)  # type: ignore[no-any-return]

    async def claim_due(self, limit: int) -> list[tuple[int, JobRequest]]:
        def op(conn: sqlite3.Connection) -> list[tuple[int, JobRequest]]:
            now = utcnow()
            rows = conn.execute(
                "UPDATE jobs SET due_at = ? WHERE id IN (SELECT id FROM jobs"
                " WHERE state = 'scheduled' AND due_at <= ? ORDER BY due_at LIMIT ?)"
                " RETURNING id, request",
                (due_text(now + timedelta(seconds=RELEASE_LEASE_SECONDS)), due_text(now), limit),
            ).fetchall()
            return [(offset, JobRequest.model_validate_json(body)) for offset, body in rows]

        return await self._write(op)  # type: ignore[no-any-return]

    async def mark_released(self, offset: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE jobs SET state = 'queued', due_at = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'scheduled'",
                (utcnow().isoformat(), offset),
            )
        )

    async def release_again(self, offset: int) -> None:
        now = utcnow().isoformat()
        await self._write(
            lambda conn: conn.execute(
                "UPDATE jobs SET state = 'scheduled', due_at = ?, updated_at = ?"
                " WHERE id = ? AND state = 'queued' AND NOT EXISTS"
                " (SELECT 1 FROM replies WHERE job_id = ?)",
                (now, now, offset, offset),
            )
        )

    async def discard_job(self, offset: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            deleted = conn.execute(
                "DELETE FROM jobs WHERE id = ? AND NOT EXISTS"
                " (SELECT 1 FROM replies WHERE job_id = ?)",
                (offset, offset),
            ).rowcount
            if deleted:
                conn.execute("DELETE FROM job_tags WHERE job_id = ?", (offset,))

        await self._write(op)

    async def store_replies(self, replies: Sequence[Reply]) -> list[StoreOutcome]:
        def op(conn: sqlite3.Connection) -> list[StoreOutcome]:
            views = Views()
            outcomes = [_store_one(conn, reply, views) for reply in replies]
            _save_views(conn, views)
            _feed(conn, {reply.offset for reply in replies})
            return outcomes

        outcomes: list[StoreOutcome] = await self._write(op)
        return outcomes

    async def replies(
        self, offset: int, after_seq: int = -1, *, with_progress: bool = False
    ) -> list[Reply]:
        tail, more = (SQLITE_PROGRESS_AFTER, (offset, after_seq)) if with_progress else ("", ())

        def op(conn: sqlite3.Connection) -> list[Reply]:
            rows = conn.execute(
                f"SELECT {REPLY_COLUMNS} FROM replies WHERE job_id = ? AND seq > ?"
                f" AND {PREFIX_REPLIES.format(jobs='jobs', offset='?')}{tail} ORDER BY seq",
                (offset, after_seq, offset, *more),
            ).fetchall()
            if not rows and not _job_exists(conn, offset):
                raise lifecycle.missing(conn, offset)
            return [reply_from_row(offset, row) for row in rows]

        return await self._read(op)

    async def job(self, offset: int) -> JobRecord:
        def op(conn: sqlite3.Connection) -> JobRecord:
            row = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",
                (offset,),
            ).fetchone()
            if row is None:
                raise lifecycle.missing(conn, offset)
            rows = conn.execute(
                f"SELECT {REPLY_COLUMNS} FROM replies WHERE job_id = ?"
                f" AND {PREFIX_REPLIES.format(jobs='jobs', offset='?')} ORDER BY seq",
                (offset, offset),
            ).fetchall()
            record = job_from_row(offset, row, rows)
            record.progress = report(progress_reply(offset, sqlite_row(conn, offset)))
            return record

        return await self._read(op)

    async def progress(self, offset: int) -> Reply | None:
        return await self._read(lambda conn: progress_reply(offset, sqlite_row(conn, offset)))

    async def pending_cancels(self, limit: int) -> list[int]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT id FROM jobs WHERE cancel_requested = 1"
                " AND state NOT IN ('done', 'failed', 'cancelled')"
                " ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [offset for (offset,) in rows]

    async def list_jobs(self, found: JobFilter, before: int | None, limit: int) -> list[JobRow]:
        sql, params = list_query(_qmark, TABLES, found, before, limit, utc_text)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [row_from_db(row) for row in rows]

    async def feed(self, found: JobFilter, after: int, limit: int) -> list[tuple[int, Reply]]:
        sql, params = feed_query(_qmark, TABLES, found, after, limit, utc_text)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [feed_item(row) for row in rows]

    async def feed_end(self) -> int:
        (end,) = await self._read(lambda conn: conn.execute("SELECT next - 1 FROM feed").fetchone())
        return int(end)

    async def stats(self, minutes: int) -> tuple[dict[JobState, int], list[int]]:
        now = utcnow()
        since = utc_text(now - timedelta(minutes=minutes))

        def op(conn: sqlite3.Connection) -> tuple[dict[JobState, int], list[int]]:
            counts = {
                state: conn.execute(
                    "SELECT count(*) FROM jobs WHERE state = ? AND updated_at >= ?",
                    (state.value, since),
                ).fetchone()[0]
                for state in JobState
            }
            buckets = conn.execute(
                "SELECT CAST((julianday(?) - julianday(updated_at)) * 1440 AS INTEGER) AS ago,"
                " count(*) FROM jobs WHERE state = ? AND updated_at >= ? GROUP BY ago",
                (utc_text(now), JobState.DONE.value, since),
            ).fetchall()
            return counts, completed_series(buckets, minutes)

        return await self._read(op)

    # -- batches and retention (ledger/sqlite_lifecycle.py) --------------------------------

    async def create_jobs(
        self, items: BatchItems, due: Sequence[datetime | None], owner: str | None = None
    ) -> list[tuple[int, bool]]:
        create = lifecycle.create_jobs(scoped_items(items, owner), due)

        def op(conn: sqlite3.Connection) -> list[tuple[int, bool]]:
            filled = create(conn)
            made = [offset for offset, created in filled if created]
            if owner is not None and made:  # in the same transaction as the jobs
                conn.executemany(
                    "UPDATE jobs SET owner = ? WHERE id = ?", [(owner, o) for o in made]
                )
            return filled

        return await unscoping(lambda: self._write(op))

    # -- API keys and owners (ledger/keys.py) -----------------------------------------------

    async def job_owner(self, offset: int) -> str | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT owner FROM jobs WHERE id = ?", (offset,)).fetchone()
        )
        return None if row is None else str(row[0]) if row[0] is not None else None

    async def add_key(self, name: str, digest: str, admin: bool) -> KeyRecord:
        def op(conn: sqlite3.Connection) -> KeyRecord:
            try:
                row = conn.execute(
                    "INSERT INTO api_keys (name, digest, admin, created_at) VALUES (?, ?, ?, ?)"
                    f" RETURNING {KEY_COLUMNS}",
                    (name, digest, admin, utcnow().isoformat()),
                ).fetchone()
            except sqlite3.IntegrityError:
                raise KeyExistsError(name) from None
            return key_from_row(row)

        return await self._write(op)  # type: ignore[no-any-return]

    async def keys(self) -> list[KeyRecord]:
        query = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY name"
        rows = await self._read(lambda conn: conn.execute(query).fetchall())
        return [key_from_row(row) for row in rows]

    async def revoke_key(self, name: str) -> bool:
        changed = await self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                    (utcnow().isoformat(), name),
                ).rowcount
            )
        )
        return bool(changed)

    async def key_by_digest(self, digest: str) -> KeyRecord | None:
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = ?", (digest,)
            ).fetchone()
        )
        return None if row is None else key_from_row(row)

    async def discard_jobs(self, offsets: Sequence[int]) -> None:
        await self._write(lifecycle.discard_jobs(offsets))

    async def delete_job(self, offset: int) -> None:
        await self._write(lifecycle.delete_job(offset))
        await self.reclaim_space()

    async def purge_finished(self, before: datetime, limit: int) -> int | None:
        return await self._write(lifecycle.purge_finished(before, limit))  # type: ignore[no-any-return]

    async def reclaim_space(self) -> None:
        # NOTE: a few MiB per write, so the writer is never held long; SQLite hands pages
        # back only with auto_vacuum=INCREMENTAL (a new ledger; see docs/operating.md).
        while await self._write(lifecycle.reclaim):
            pass

    # -- plumbing -------------------------------------------------------------------------

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = _connect(self._path)
            return op(conn)

        return await _unavailable_on_error(
            asyncio.get_running_loop().run_in_executor(self._readers, run)
        )

    async def _write(self, op: Op) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await loop.run_in_executor(self._writer, self._commit, batch)
            except Exception as exc:  # the flush task must never die
                # NOTE: _commit maps what one write did wrong to that write alone; what is
                # left is the database itself failing, and every write of the batch waits.
                for _, future in batch:
                    if not future.done():
                        future.set_exception(LedgerUnavailableError(f"SQLite write failed: {exc}"))
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _commit(self, batch: list[tuple[Op, asyncio.Future[Any]]]) -> list[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._path)
        try:
            with conn:  # one transaction for the whole batch
                return [_run(op, conn) for op, _ in batch]
        except Exception as exc:
            if _is_outage(exc):
                raise
        # NOTE: one write the database refused (its data, not the database) rolled the whole
        # batch back: each write again in a transaction of its own, so it fails alone.
        return [self._commit_alone(op, conn) for op, _ in batch]

    @staticmethod
    def _commit_alone(op: Op, conn: sqlite3.Connection) -> Any:
        try:
            with conn:
                return _run(op, conn)
        except Exception as exc:
            if _is_outage(exc):
                return LedgerUnavailableError(f"SQLite write failed: {exc}")
            return LedgerRejectedError(f"SQLite refused the write: {type(exc).__name__}: {exc}")


def _run(op: Op, conn: sqlite3.Connection) -> Any:
    """Run one write; the domain errors it raises are its result, not the batch's."""
    try:
        return op(conn)
    except (
        UnknownOffsetError,
        IdempotencyConflictError,
        JobNotFinishedError,
        KeyExistsError,
    ) as exc:
        return exc


def _is_outage(exc: BaseException) -> bool:
    """True when the database itself fails (locked, I/O, disk full, corrupt), not one write."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError
    )


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False, timeout=30)
    # NOTE: takes effect only in a new file (before its first table): purged pages can then
    # be handed back to the file system (PRAGMA incremental_vacuum, after each purge).
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    # NOTE: FULL syncs the WAL on every commit, so a committed reply survives a power cut,
    # not just a crash; group commit keeps the cost to one fsync per batch.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _job_exists(conn: sqlite3.Connection, offset: int) -> bool:
    return conn.execute("SELECT 1 FROM jobs WHERE id = ?", (offset,)).fetchone() is not None


def _same_request(row: tuple[int, str], body: str, key: str) -> int:
    offset, stored = row
    if JobRequest.model_validate_json(stored) != JobRequest.model_validate_json(body):
        raise IdempotencyConflictError(key, offset)
    return offset


TABLES = {"jobs": "jobs", "replies": "replies", "tags": "job_tags"}


def _qmark(n: int) -> str:
    return f"?{n}"


def _feed(conn: sqlite3.Connection, offsets: set[int] | None) -> None:
    """Give the replies that joined their job's prefix (of `offsets`; None: of every job)
    their feed cursors, in (job, seq) order, from the `feed` counter."""
    among = "" if offsets is None else f" AND r.job_id IN ({','.join('?' * len(offsets))})"
    joined = conn.execute(
        "SELECT r.job_id, r.seq FROM replies r JOIN jobs j ON j.id = r.job_id"
        f" WHERE r.recorded IS NULL AND r.seq < j.next_seq{among} ORDER BY r.job_id, r.seq",
        sorted(offsets or ()),
    ).fetchall()
    if not joined:
        return
    (first,) = conn.execute(
        "UPDATE feed SET next = next + ? RETURNING next - ?", (len(joined), len(joined))
    ).fetchone()
    conn.executemany(
        "UPDATE replies SET recorded = ? WHERE job_id = ? AND seq = ?",
        [(first + i, job_id, seq) for i, (job_id, seq) in enumerate(joined)],
    )


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.executescript(lifecycle.SCHEMA)
    conn.executescript(PROGRESS_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "next_seq" not in columns:
        conn.executescript(MIGRATION)
    if "recorded" not in {row[1] for row in conn.execute("PRAGMA table_info(replies)")}:
        conn.execute("ALTER TABLE replies ADD COLUMN recorded INTEGER")
    conn.executescript(LISTING_SCHEMA)
    _add_steering(conn)
    _add_keys(conn)
    _feed(conn, None)  # replies stored before the feed existed get their cursors


def _add_steering(conn: sqlite3.Connection) -> None:
    """Cancel requests and delayed starts (ledger/steering.py), also in ledgers older than them."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "cancel_requested" not in columns:
        conn.execute("ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0")
    if "due_at" not in columns:
        conn.execute("ALTER TABLE jobs ADD COLUMN due_at TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_at) WHERE state = 'scheduled'")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS jobs_cancel_pending ON jobs (id)"
        " WHERE cancel_requested = 1 AND state NOT IN ('done', 'failed', 'cancelled')"
    )


def _add_keys(conn: sqlite3.Connection) -> None:
    """API keys and jobs' owners (ledger/keys.py), also in ledgers older than them."""
    conn.executescript(KEYS_SCHEMA)
    if "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}:
        conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
    conn.execute(SQLITE_OWNER_INDEX)
    # NOTE: user_version 1: idempotency keys are scoped by owner (ledger/idempotency.py).
    if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
        conn.execute(MIGRATE_SQLITE)
        conn.execute("PRAGMA user_version = 1")


def _store_one(conn: sqlite3.Connection, reply: Reply, views: Views | None = None) -> StoreOutcome:
    """Store one reply by the rules; with `views`, its job's bookkeeping is kept there (read
    once and written once per batch, by `_save_views`) instead of written at once."""
    if reply.kind is ReplyKind.PROGRESS:
        if views:
            _save_views(conn, views)  # the progress rule reads the job's row
        return sqlite_store(conn, reply)  # the job's latest progress, not a step
    view = None if views is None else views.view(reply.offset)
    if view is None:
        row = conn.execute(
            f"SELECT {BOOKKEEPING_COLUMNS} FROM jobs WHERE id = ?", (reply.offset,)
        ).fetchone()
        view = None if row is None else view_from_row(row)
    refused = judge(view, reply)
    if refused is not None:
        return refused
    assert view is not None
    inserted = conn.execute(
        "INSERT INTO replies (job_id, seq, kind, value, produced_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (reply.offset, reply.seq, reply.kind, dump_value(reply), reply.produced_at.isoformat()),
    ).rowcount
    if not inserted:
        return StoreOutcome.DUPLICATE
    above: list[int] = []
    if needs_seqs_above(view, reply):
        above = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM replies WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (reply.offset, reply.seq, SEQ_WINDOW),
            )
        ]
    stored = after_storing(view, reply, above)
    if views is None:
        _save_view(conn, reply.offset, stored, error_text(reply))
    else:
        views.stored(reply.offset, stored, error_text(reply))
    return StoreOutcome.STORED


def _save_views(conn: sqlite3.Connection, views: Views) -> None:
    for offset, view, error in views.take():
        _save_view(conn, offset, view, error)


def _save_view(conn: sqlite3.Connection, offset: int, view: JobView, error: str | None) -> None:
    conn.execute(
        "UPDATE jobs SET state = ?, next_seq = ?, max_seq = ?, final_seq = ?, final_kind = ?,"
        " error = coalesce(?, error), updated_at = ? WHERE id = ?",
        (
            view.state,
            view.next_seq,
            view.max_seq,
            view.final_seq,
            view.final_kind,
            error,
            utcnow().isoformat(),
            offset,
        ),
    )


async def _unavailable_on_error(awaitable: "asyncio.Future[T]") -> T:
    try:
        return await awaitable
    except sqlite3.Error as exc:
        raise LedgerUnavailableError(f"SQLite read failed: {exc}") from exc

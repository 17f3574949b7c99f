"""The SQLite ledger's batches and retention: many jobs recorded at once, finished jobs purged
or deleted, and purged offsets remembered (so they answer 410, not 404).

Functions of a connection, run by SqliteLedger on its writer or reader threads.
"""

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from contracts import JobRequest, JobState, UnknownOffsetError
from contracts.errors import JobNotFinishedError, OffsetExpiredError
from contracts.messages import utcnow
from ledger.batches import BatchItems, fill, repeats
from ledger.listing import utc_text
from ledger.retention import runs
from ledger.steering import due_text

# NOTE: purged offsets as runs (first, last): jobs mostly end in offset order, so a purge of
# 500 is mostly one row here. An offset that has no job and is in no run was never handed out
# (404); one in a run was, and its job is gone (410). Discarded offsets (a 503) are in none.
SCHEMA = """
CREATE TABLE IF NOT EXISTS purged (first INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS purged_by_last ON purged (last);
"""

INCREMENTAL = 2
"""PRAGMA auto_vacuum's value for INCREMENTAL."""
RECLAIM_PAGES = 2000
"""Free pages handed back to the file system per write (8 MiB of 4 KiB pages)."""


def final_states() -> list[str]:
    return [state.value for state in JobState if state.is_final]


def create_jobs(
    items: BatchItems, due: Sequence[datetime | None]
) -> Callable[[sqlite3.Connection], list[tuple[int, bool]]]:
    """The write that records a batch: every new job, or (a key reused) none. A job with a
    `due` time waits in the ledger, `scheduled`, as create_job records it."""
    bodies = [request.model_dump_json() for request, _ in items]
    dues = [None if at is None else due_text(at) for at in due]

    def op(conn: sqlite3.Connection) -> list[tuple[int, bool]]:
        keys = [key for _, key in items if key is not None]
        known: dict[str, tuple[int, JobRequest]] = {}
        if keys:
            stored = conn.execute(
                "SELECT idempotency_key, id, request FROM jobs"
                f" WHERE idempotency_key IN ({_marks(keys)})",
                keys,
            )
            known = {k: (id_, JobRequest.model_validate_json(body)) for k, id_, body in stored}
        # NOTE: every check before the first write: this op shares its transaction with the
        # other writes of its group, so it must raise (a conflict) before it wrote anything.
        placed = repeats(items, known)
        new = placed.count(None)
        fresh: range = range(0)
        if new:
            (first,) = conn.execute(
                "UPDATE offsets SET next = next + ? RETURNING next - ?", (new, new)
            ).fetchone()
            fresh = range(first, first + new)
        filled = fill(placed, fresh)
        now = utcnow().isoformat()
        rows = [
            (offset, body, request.fn, _state(at), key, now, now, at)
            for (offset, made), body, (request, key), at in zip(
                filled, bodies, items, dues, strict=True
            )
            if made
        ]
        conn.executemany(
            "INSERT INTO jobs (id, request, fn, state, idempotency_key, created_at, updated_at,"
            " due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO job_tags (tag, job_id) VALUES (?, ?)",
            [
                (tag, offset)
                for (offset, made), (request, _) in zip(filled, items, strict=True)
                if made
                for tag in request.tags
            ],
        )
        return filled

    return op


def _state(due: str | None) -> str:
    return (JobState.QUEUED if due is None else JobState.SCHEDULED).value


def discard_jobs(offsets: Sequence[int]) -> Callable[[sqlite3.Connection], None]:
    """The write that forgets jobs that never reached the broker (as discard_job does)."""

    def op(conn: sqlite3.Connection) -> None:
        gone = [
            offset
            for (offset,) in conn.execute(
                f"DELETE FROM jobs WHERE id IN ({_marks(offsets)}) AND NOT EXISTS"
                " (SELECT 1 FROM replies WHERE job_id = jobs.id) RETURNING id",
                list(offsets),
            ).fetchall()
        ]
        if gone:
            conn.execute(f"DELETE FROM job_tags WHERE job_id IN ({_marks(gone)})", gone)

    return op


def purge_finished(before: datetime, limit: int) -> Callable[[sqlite3.Connection], int]:
    """The write that purges up to `limit` jobs that ended before `before`."""

    def op(conn: sqlite3.Connection) -> int:
        states = final_states()
        ids = [
            offset
            for (offset,) in conn.execute(
                f"SELECT id FROM jobs WHERE state IN ({_marks(states)}) AND updated_at < ? LIMIT ?",
                (*states, utc_text(before), limit),
            ).fetchall()
        ]
        _forget(conn, ids)
        return len(ids)

    return op


def delete_job(offset: int) -> Callable[[sqlite3.Connection], None]:
    """The write behind DELETE /jobs/{offset}: a finished job's request and results, now."""

    def op(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT state FROM jobs WHERE id = ?", (offset,)).fetchone()
        if row is None:
            raise missing(conn, offset)
        if not JobState(row[0]).is_final:
            raise JobNotFinishedError(offset)
        _forget(conn, [offset])

    return op


def reclaim(conn: sqlite3.Connection) -> bool:
    """Give up to RECLAIM_PAGES free pages back to the file system; True while more are left
    that a next call would hand back."""
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode != INCREMENTAL:
        return False  # a ledger made before jobcast set it: free pages are only reused
    (before,) = conn.execute("PRAGMA freelist_count").fetchone()
    conn.execute(f"PRAGMA incremental_vacuum({RECLAIM_PAGES})").fetchall()
    (left,) = conn.execute("PRAGMA freelist_count").fetchone()
    return 0 < int(left) < int(before)


def missing(conn: sqlite3.Connection, offset: int) -> UnknownOffsetError:
    """Why `offset` has no job: purged (OffsetExpiredError) or never handed out."""
    found = conn.execute(
        "SELECT 1 FROM purged WHERE first <= ? AND last >= ? LIMIT 1", (offset, offset)
    ).fetchone()
    return UnknownOffsetError(offset) if found is None else OffsetExpiredError(offset)


def _forget(conn: sqlite3.Connection, offsets: list[int]) -> None:
    """Delete these jobs, their replies and tags, and remember their offsets as purged."""
    if not offsets:
        return
    marks = _marks(offsets)
    conn.execute(f"DELETE FROM replies WHERE job_id IN ({marks})", offsets)
    conn.execute(f"DELETE FROM job_tags WHERE job_id IN ({marks})", offsets)
    conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", offsets)
    for first, last in runs(offsets):
        _remember(conn, first, last)


def _remember(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Record the run first..last as purged, joined with the runs right below and above it."""
    below = conn.execute("SELECT first FROM purged WHERE last = ?", (first - 1,)).fetchone()
    if below is not None:
        first = below[0]
        conn.execute("DELETE FROM purged WHERE first = ?", (first,))
    above = conn.execute("SELECT last FROM purged WHERE first = ?", (last + 1,)).fetchone()
    if above is not None:
        conn.execute("DELETE FROM purged WHERE first = ?", (last + 1,))
        last = above[0]
    conn.execute("INSERT OR REPLACE INTO purged (first, last) VALUES (?, ?)", (first, last))


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))

"""The latest progress of each job: one row per job, kept beside the job, never a step.

A `progress` reply is not stored among the replies: it never joins the prefix, never moves
`next_seq`, never shows in GET /messages. The ledger keeps only the newest per job (a later
step's, or a later tick of the same step), so GET /jobs/{offset} and every follower, on any
gateway, read the same one. The rule (`judge_progress`) is plain code; the two databases
only store what it lets through.
"""

from datetime import UTC, datetime
from typing import Any

import orjson

from contracts import ProgressReport, Reply, ReplyKind
from contracts.messages import SEQ_WINDOW
from ledger.rows import BOOKKEEPING_COLUMNS, view_from_row
from ledger.rules import JobView, StoreOutcome

Latest = tuple[int, datetime]
"""The (seq, produced_at) of the progress a job keeps."""

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_progress (
    job_id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    produced_at TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS job_progress_goes_with_its_job AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_progress WHERE job_id = OLD.id;
END;
"""
"""A table of its own (created if missing, so an existing ledger needs no migration), removed
with its job (retention, DELETE /jobs/{offset})."""

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobcast_job_progress (
    job_id BIGINT PRIMARY KEY REFERENCES jobcast_jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    produced_at TIMESTAMPTZ NOT NULL,
    value TEXT NOT NULL
);
"""

# NOTE: appended to a follower's read of the replies (Ledger.replies with_progress), so one
# statement, one snapshot, gives both: a tick never looks newer than the results beside it.
SQLITE_PROGRESS_AFTER = (
    " UNION ALL SELECT seq, 'progress', value, produced_at FROM job_progress"
    " WHERE job_id = ? AND seq > ?"
)
POSTGRES_PROGRESS_AFTER = (
    " UNION ALL SELECT seq, 'progress', value, produced_at FROM jobcast_job_progress"
    " WHERE job_id = $1 AND seq > $2"
)

NOTIFY_CHANNEL = "jobcast_replies"
"""The channel stored replies ring on (ledger/notifications.py): a kept progress rings it too,
so followers on every gateway read it."""


def judge_progress(
    view: JobView | None, latest: Latest | None, reply: Reply
) -> StoreOutcome | None:
    """Why a `progress` reply is not kept, or None when it becomes the job's latest.

    Refused (dead-lettered) when no worker could have sent it: an unknown offset, a step after
    the job's final reply, a seq far beyond the first missing one. STALE (dropped quietly)
    when a worker could have, but it is old news: its step's result or the job's end is
    recorded already (replies reach the ledger through several gateways, not in one order),
    or the job keeps a newer tick.
    """
    if view is None:
        return StoreOutcome.UNKNOWN_OFFSET
    if view.final_seq is not None:
        return StoreOutcome.AFTER_FINAL if reply.seq > view.final_seq else StoreOutcome.STALE
    if reply.seq < view.next_seq:
        return StoreOutcome.STALE
    if reply.seq >= view.next_seq + SEQ_WINDOW:
        return StoreOutcome.TOO_FAR_AHEAD
    if latest is not None and (reply.seq, _utc(reply.produced_at)) <= (latest[0], _utc(latest[1])):
        return StoreOutcome.STALE
    return None


def _utc(moment: datetime) -> datetime:
    # NOTE: a sender may write its time without a zone; it is taken as UTC, as jobcast writes
    # it, rather than failing the comparison.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def progress_reply(offset: int, row: Any) -> Reply | None:
    """A job_progress row (seq, produced_at, value), back as the `progress` reply; None: none."""
    if row is None:
        return None
    seq, produced_at, value = row
    when = produced_at if isinstance(produced_at, datetime) else datetime.fromisoformat(produced_at)
    return Reply(
        offset=offset, seq=seq, kind=ReplyKind.PROGRESS, value=orjson.loads(value), produced_at=when
    )


def report(reply: Reply | None) -> ProgressReport | None:
    """What GET /jobs/{offset} shows of the kept progress."""
    return None if reply is None else ProgressReport.of(reply)


# -- SQLite (inside the one writer's transaction) -----------------------------------------


def sqlite_store(conn: Any, reply: Reply) -> StoreOutcome:
    """Keep `reply` as its job's latest progress if the rule lets it."""
    row = conn.execute(
        f"SELECT {BOOKKEEPING_COLUMNS} FROM jobs WHERE id = ?", (reply.offset,)
    ).fetchone()
    kept = progress_reply(reply.offset, sqlite_row(conn, reply.offset))
    refused = judge_progress(None if row is None else view_from_row(row), _latest(kept), reply)
    if refused is not None:
        return refused
    conn.execute(
        "INSERT INTO job_progress (job_id, seq, produced_at, value) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (job_id) DO UPDATE SET seq = excluded.seq,"
        " produced_at = excluded.produced_at, value = excluded.value",
        (reply.offset, reply.seq, reply.produced_at.isoformat(), _value(reply)),
    )
    return StoreOutcome.STORED


def sqlite_row(conn: Any, offset: int) -> Any:
    return conn.execute(
        "SELECT seq, produced_at, value FROM job_progress WHERE job_id = ?", (offset,)
    ).fetchone()


# -- PostgreSQL (storing: ledger/postgres_replies.py) ------------------------------------


async def postgres_row(conn: Any, offset: int) -> Any:
    row = await conn.fetchrow(
        "SELECT seq, produced_at, value FROM jobcast_job_progress WHERE job_id = $1", offset
    )
    return None if row is None else tuple(row)


def _latest(kept: Reply | None) -> Latest | None:
    return None if kept is None else (kept.seq, kept.produced_at)


def _value(reply: Reply) -> str:
    return orjson.dumps(reply.value).decode()

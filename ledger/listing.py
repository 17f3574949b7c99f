"""The jobs list, the feed of replies and the fleet counts: SQL both ledgers share.

Each query is built from a JobFilter with the database's own placeholders (`?` or `$n`), so
the two ledgers differ only in how they run it. Every filter has an index behind it (the
schemas in sqlite.py and postgres.py): `(state, id)`, `(fn, id)`, `(created_at)`, and a tags
table keyed `(tag, job_id)`, so a page is read from an index, newest first, on any ledger size.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from contracts import JobState, Reply, ReplyKind
from contracts.listing import JobFilter, JobRow

Placeholder = Callable[[int], str]
"""The n-th (1-based) parameter's placeholder: `?n` for SQLite, `$n` for PostgreSQL (numbered,
so a condition's text may come before or after another's)."""

ROW_COLUMNS = (
    "j.id, j.fn, j.state, j.request, j.next_seq, j.final_seq, j.created_at, j.updated_at, j.error"
)
FEED_COLUMNS = "r.recorded, r.job_id, r.seq, r.kind, r.value, r.produced_at"


@dataclass
class Query:
    """SQL text and its parameters, built up condition by condition."""

    placeholder: Placeholder
    joins: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return self.placeholder(len(self.params))

    def conditions(self) -> str:
        return " AND ".join(self.where) or "TRUE"


def _filtered(
    query: Query,
    found: JobFilter,
    tables: dict[str, str],
    job: str,
    when: Callable[[datetime], Any],
) -> None:
    """Add `found`'s conditions on the job whose id is the column `job`."""
    if found.tag is not None:
        query.joins.append(
            f"JOIN {tables['tags']} t ON t.job_id = {job} AND t.tag = {query.param(found.tag)}"
        )
    if found.state is not None:
        query.where.append(f"j.state = {query.param(found.state.value)}")
    if found.fn is not None:
        query.where.append(f"j.fn = {query.param(found.fn)}")
    if found.since is not None:
        query.where.append(f"j.created_at >= {query.param(when(found.since))}")
    if found.until is not None:
        query.where.append(f"j.created_at < {query.param(when(found.until))}")
    if found.owner is not None:
        query.where.append(f"j.owner = {query.param(found.owner)}")


def list_query(
    placeholder: Placeholder,
    tables: dict[str, str],
    found: JobFilter,
    before: int | None,
    limit: int,
    when: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """Jobs matching `found` with an offset below `before`, newest (highest offset) first."""
    query = Query(placeholder)
    _filtered(query, found, tables, "j.id", when)
    # NOTE: with a tag, the tags table's (tag, job_id) key gives the order: read backwards, it
    # stops after `limit` rows instead of sorting every job with the tag.
    order = "j.id" if found.tag is None else "t.job_id"
    if before is not None:
        query.where.append(f"{order} < {query.param(before)}")
    sql = (
        f"SELECT {ROW_COLUMNS} FROM {tables['jobs']} j {' '.join(query.joins)}"
        f" WHERE {query.conditions()} ORDER BY {order} DESC LIMIT {query.param(limit)}"
    )
    return sql, query.params


def feed_query(
    placeholder: Placeholder,
    tables: dict[str, str],
    found: JobFilter,
    after: int,
    limit: int,
    when: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """Replies of jobs matching `found` with a feed cursor above `after`, in cursor order."""
    query = Query(placeholder)
    query.where.append(f"r.recorded > {query.param(after)}")
    _filtered(query, found, tables, "r.job_id", when)
    needs_job = any(
        x is not None for x in (found.state, found.fn, found.since, found.until, found.owner)
    )
    job = f"JOIN {tables['jobs']} j ON j.id = r.job_id" if needs_job else ""
    sql = (
        f"SELECT {FEED_COLUMNS} FROM {tables['replies']} r {job} {' '.join(query.joins)}"
        f" WHERE {query.conditions()} ORDER BY r.recorded LIMIT {query.param(limit)}"
    )
    return sql, query.params


def row_from_db(row: Sequence[Any]) -> JobRow:
    """A jobs row (ROW_COLUMNS) as the list shows it."""
    offset, fn, state, request, next_seq, final_seq, created_at, updated_at, error = row
    state = JobState(state)
    created, updated = as_datetime(created_at), as_datetime(updated_at)
    ended = final_seq is not None and final_seq < next_seq
    return JobRow(
        offset=offset,
        fn=fn,
        state=state,
        tags=orjson.loads(request).get("tags", []),
        steps=next_seq - 1 if ended else next_seq,
        created_at=created,
        updated_at=updated,
        duration_seconds=(updated - created).total_seconds() if state.is_final else None,
        error=error if state is JobState.FAILED else None,
    )


def feed_item(row: Sequence[Any]) -> tuple[int, Reply]:
    """A feed row (FEED_COLUMNS) as its cursor and its Reply."""
    recorded, offset, seq, kind, value, produced_at = row
    reply = Reply(
        offset=offset,
        seq=seq,
        kind=ReplyKind(kind),
        value=orjson.loads(value),
        produced_at=as_datetime(produced_at),
    )
    return recorded, reply


def completed_series(buckets: Sequence[tuple[int, int]], minutes: int) -> list[int]:
    """Per-minute counts, oldest first, from (minutes ago, count) rows (0 = the last minute)."""
    series = [0] * minutes
    for ago, count in buckets:
        if 0 <= ago < minutes:
            series[minutes - 1 - ago] += count
    return series


def as_datetime(value: Any) -> datetime:
    """A stored time (a datetime, or the ISO text SQLite keeps) as a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def utc_text(moment: datetime) -> str:
    """A time as the SQLite ledger writes it (ISO 8601 in UTC), so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()

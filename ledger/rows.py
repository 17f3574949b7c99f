"""Turning database rows into contract objects, the same way for every database."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from contracts import JobRecord, JobRequest, JobState, Reply, ReplyKind
from ledger.rules import JobView


def dump_value(reply: Reply) -> str:
    """A reply's value as the JSON text the ledger keeps."""
    return orjson.dumps(reply.value).decode()


def reply_from_row(offset: int, row: Sequence[Any]) -> Reply:
    """A stored reply row (REPLY_COLUMNS), back as a Reply."""
    seq, kind, value, produced_at = row
    return Reply(
        offset=offset,
        seq=seq,
        kind=ReplyKind(kind),
        value=orjson.loads(value),
        produced_at=_as_datetime(produced_at),
    )


JOB_COLUMNS = "request, state, error, created_at, updated_at, cancel_requested, due_at"
REPLY_COLUMNS = "seq, kind, value, produced_at"
BOOKKEEPING_COLUMNS = "state, next_seq, max_seq, final_seq, final_kind, cancel_requested"

PREFIX_REPLIES = "seq < (SELECT next_seq FROM {jobs} WHERE id = {offset})"
"""The condition that keeps a read to the replies every reader is shown: seq 0 up to the
first missing one. Formatted with the jobs table's name and the offset's placeholder."""


def view_from_row(row: Sequence[Any]) -> JobView:
    """A job's bookkeeping row (BOOKKEEPING_COLUMNS) as a JobView."""
    state, next_seq, max_seq, final_seq, final_kind, cancel_requested = row
    return JobView(
        state=JobState(state),
        next_seq=next_seq,
        max_seq=max_seq,
        final_seq=final_seq,
        final_kind=None if final_kind is None else ReplyKind(final_kind),
        cancel_requested=bool(cancel_requested),
    )


def job_from_row(offset: int, row: Sequence[Any], reply_rows: Iterable[Sequence[Any]]) -> JobRecord:
    """A stored job row (JOB_COLUMNS) and its reply rows (REPLY_COLUMNS), as a JobRecord."""
    request, state, error, created_at, updated_at, cancel_requested, due_at = row
    state = JobState(state)
    return JobRecord(
        offset=offset,
        state=state,
        request=JobRequest.model_validate_json(request),
        replies=[reply_from_row(offset, r) for r in reply_rows],
        error=error if state is JobState.FAILED else None,
        created_at=_as_datetime(created_at),
        updated_at=_as_datetime(updated_at),
        cancel_requested=bool(cancel_requested),
        due_at=None if due_at is None or state is not JobState.SCHEDULED else _as_datetime(due_at),
    )


def error_text(reply: Reply) -> str | None:
    """The failure reason an error reply carries, as text."""
    if reply.kind is not ReplyKind.ERROR:
        return None
    return reply.value if isinstance(reply.value, str) else orjson.dumps(reply.value).decode()


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

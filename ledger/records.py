"""Turning database rows into contract objects, the same way for every database."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from contracts import JobRecord, JobRequest, JobState, Reply, ReplyKind


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


JOB_COLUMNS = "request, state, error, created_at, updated_at"
REPLY_COLUMNS = "seq, kind, value, produced_at"


def job_from_row(offset: int, row: Sequence[Any], reply_rows: Iterable[Sequence[Any]]) -> JobRecord:
    """A stored job row (JOB_COLUMNS) and its reply rows (REPLY_COLUMNS), as a JobRecord."""
    request, state, error, created_at, updated_at = row
    return JobRecord(
        offset=offset,
        state=JobState(state),
        request=JobRequest.model_validate_json(request),
        replies=[reply_from_row(offset, r) for r in reply_rows],
        error=error,
        created_at=_as_datetime(created_at),
        updated_at=_as_datetime(updated_at),
    )


def state_after(kind: ReplyKind) -> JobState:
    """The state a job is in once a reply of this kind is stored."""
    return {
        ReplyKind.RESULT: JobState.RUNNING,
        ReplyKind.DONE: JobState.DONE,
        ReplyKind.ERROR: JobState.FAILED,
    }[kind]


def error_text(reply: Reply) -> str | None:
    """The failure reason an error reply carries, as text."""
    if reply.kind is not ReplyKind.ERROR:
        return None
    return reply.value if isinstance(reply.value, str) else orjson.dumps(reply.value).decode()


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

"""Recording jobs in PostgreSQL in groups: the create_job calls that arrive while one group is
being written go into the next, and a group is one statement (two with idempotency keys).

Under no load a job is written alone at once; under load (an intake taking 64 submissions at
once, several HTTP clients) one round trip and one commit serve a whole group, as SQLite's one
writer does. Every caller still gets exactly what it would have alone: its offset, its earlier
offset for a key used before for the same request, or its own IdempotencyConflictError. A group
the database refuses is written again one job at a time, so a bad job fails alone.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import IdempotencyConflictError, JobRequest, JobState, LedgerUnavailableError

MAX_GROUP = 256
"""Jobs written in one statement at most."""

# NOTE: the offsets come from nextval in the items' order (a function scan's rows, numbered,
# materialized once), so a group's jobs get ascending offsets in the order they were asked for.
# A key that another gateway inserted meanwhile loses the race quietly (DO NOTHING, no id
# returned): its caller is then answered from the winner's row.
INSERT = """
WITH items AS MATERIALIZED (
    SELECT t.*, nextval('jobcast_offsets') AS id
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
        WITH ORDINALITY AS t(request, fn, state, key, due_at, owner, n)
), job AS (
    INSERT INTO jobcast_jobs (id, request, fn, state, idempotency_key, due_at, owner)
    SELECT id, request, fn, state, key, due_at, owner FROM items ORDER BY n
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
), tagged AS (
    INSERT INTO jobcast_job_tags (tag, job_id)
    SELECT g.tag, i.id FROM unnest($7::text[], $8::bigint[]) AS g(tag, n)
    JOIN items i ON i.n = g.n JOIN job ON job.id = i.id
)
SELECT job.id FROM items i LEFT JOIN job ON job.id = i.id ORDER BY i.n
"""
BY_KEYS = (
    "SELECT idempotency_key, id, request FROM jobcast_jobs WHERE idempotency_key = ANY($1::text[])"
)

Created = tuple[int, bool]
"""(offset, created): created False for a key used before for the same request."""


@dataclass(frozen=True)
class NewJob:
    """One create_job call."""

    request: JobRequest
    key: str | None
    due_at: datetime | None
    owner: str | None


class JobGroups:
    """Writes create_job calls in groups, one group at a time, on connections of `connection`."""

    def __init__(self, connection: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        self._connection = connection
        self._pending: list[tuple[NewJob, asyncio.Future[Created]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def create(self, job: NewJob) -> Created:
        """Record `job` with the next group; its (offset, created)."""
        future: asyncio.Future[Created] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_groups(), name="jobcast-job-groups")
        return await future

    async def close(self) -> None:
        """Wait for the group being written (a caller waits for it)."""
        if self._writing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writing

    async def _write_groups(self) -> None:
        while self._pending:
            group = self._pending[:MAX_GROUP]
            del self._pending[:MAX_GROUP]
            # NOTE: a caller cancelled before its group is written gets no job.
            group = [(job, future) for job, future in group if not future.done()]
            try:
                await self._settle(group)
            finally:
                for _, future in group:  # cancelled half-way (a shutdown): nobody is left waiting
                    if not future.done():
                        future.set_exception(LedgerUnavailableError("the ledger closed"))

    async def _settle(self, group: list[tuple[NewJob, asyncio.Future[Created]]]) -> None:
        try:
            outcomes = await self._write([job for job, _ in group])
        except LedgerUnavailableError as exc:
            for _, future in group:
                _answer(future, exc)
            return
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0][1], exc)
                return
            # NOTE: the database refused the group: each job alone, so only a bad one fails
            for job, future in group:
                try:
                    [outcome] = await self._write([job])
                except Exception as alone:
                    outcome = alone
                _answer(future, outcome)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            _answer(future, outcome)

    async def _write(self, jobs: Sequence[NewJob]) -> list[Created | Exception]:
        async with self._connection() as conn:
            keys = [job.key for job in jobs if job.key is not None]
            # NOTE: keys looked up first: an INSERT that hits a conflict still burns an offset.
            stored = await _by_keys(conn, keys) if keys else {}
            fresh: list[int] = []
            first: set[str] = set()
            for i, job in enumerate(jobs):
                if job.key is None or (job.key not in stored and job.key not in first):
                    fresh.append(i)
                    if job.key is not None:
                        first.add(job.key)
            ids = await _insert(conn, [jobs[i] for i in fresh]) if fresh else []
            created: dict[int, int] = {}
            for i, offset in zip(fresh, ids, strict=True):
                if offset is not None:
                    created[i] = offset
                    key = jobs[i].key
                    if key is not None:
                        stored[key] = (offset, jobs[i].request)
            lost = [k for i, k in enumerate(keys) if k not in stored]
            if lost:  # another gateway wrote these keys meanwhile: answer from its rows
                stored.update(await _by_keys(conn, lost))
        return [
            (created[i], True) if i in created else _repeat(job, stored)
            for i, job in enumerate(jobs)
        ]


def _repeat(job: NewJob, stored: dict[str, tuple[int, JobRequest]]) -> Created | Exception:
    assert job.key is not None
    offset, request = stored[job.key]
    if request != job.request:
        return IdempotencyConflictError(job.key, offset)
    return offset, False


async def _by_keys(conn: Any, keys: list[str]) -> dict[str, tuple[int, JobRequest]]:
    rows = await conn.fetch(BY_KEYS, keys)
    return {
        r["idempotency_key"]: (int(r["id"]), JobRequest.model_validate_json(r["request"]))
        for r in rows
    }


async def _insert(conn: Any, jobs: list[NewJob]) -> list[int | None]:
    tags = [
        (tag, n) for n, job in enumerate(jobs, start=1) for tag in dict.fromkeys(job.request.tags)
    ]
    rows = await conn.fetch(
        INSERT,
        [job.request.model_dump_json() for job in jobs],
        [job.request.fn for job in jobs],
        [(JobState.QUEUED if job.due_at is None else JobState.SCHEDULED).value for job in jobs],
        [job.key for job in jobs],
        [job.due_at for job in jobs],
        [job.owner for job in jobs],
        [tag for tag, _ in tags],
        [n for _, n in tags],
    )
    return [None if row["id"] is None else int(row["id"]) for row in rows]


def _answer(future: asyncio.Future[Created], outcome: Created | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

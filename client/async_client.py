"""JobcastClient: schedule jobs and follow their results, over HTTP or AMQP."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Self

from pydantic import JsonValue

from client.amqp import AmqpTransport
from client.feed import FeedTransport
from client.follow import merge
from client.http import HttpTransport
from contracts import JobAccepted, JobRecord, JobRequest, JobState, Reply, UnavailableError
from contracts.batches import BatchAccepted, BatchRequest
from contracts.control import CancelAccepted
from contracts.listing import JobPage, Stats

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"


class JobcastClient:
    """An async client for other services::

        async with JobcastClient("http://jobcast:8000", amqp_url="amqp://...") as jobs:
            offset = await jobs.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
            async for reply in jobs.follow(offset):
                print(reply.seq, reply.value)

    With `amqp_url`, jobs are scheduled over jobcast.schedule and followed on a temporary
    queue bound to reply.<offset>; without, over HTTP and SSE. Results are read from the
    gateway (`url`) either way.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        amqp_url: str | None = None,
        timeout: float = 10.0,
        api_key: str | None = None,
    ) -> None:
        # NOTE: `api_key` (JOBCAST_AUTH=on) goes with every HTTP request as a bearer token.
        self.api_key = api_key
        self.http = HttpTransport(url, timeout, api_key)
        self.feed = FeedTransport(url, timeout, api_key)
        self.amqp = AmqpTransport(amqp_url, timeout) if amqp_url else None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP client and the AMQP connection."""
        await self.http.close()
        await self.feed.close()
        if self.amqp is not None:
            await self.amqp.close()

    async def schedule(
        self, *, fn: str, deployment: str, framework: str, idempotency_key: str | None = None
    ) -> int:
        """Schedule a job; returns its offset once the broker holds the job."""
        request = JobRequest(fn=fn, deployment=deployment, framework=framework)
        accepted = await self.schedule_request(request, idempotency_key)
        return accepted.offset

    async def schedule_request(
        self, request: JobRequest, idempotency_key: str | None = None
    ) -> JobAccepted:
        """Schedule a JobRequest (same as `schedule`, for callers that hold one)."""
        transport = self.amqp or self.http
        return await transport.schedule(request, idempotency_key)

    async def schedule_many(
        self,
        requests: list[JobRequest],
        *,
        batch: str | None = None,
        idempotency_keys: list[str | None] | None = None,
    ) -> list[int]:
        """Schedule up to 1,000 jobs at once, all or none (POST /schedule/batch); their offsets
        in the order of `requests`. With `batch`, every job is tagged `batch:<batch>`; with
        `idempotency_keys` (one per request, or None), a retry answers the same offsets."""
        keys = idempotency_keys or [None] * len(requests)
        if len(keys) != len(requests):
            raise ValueError("one idempotency key (or None) per request")
        body = BatchRequest.model_validate(
            {
                "jobs": [
                    {**request.model_dump(), "idempotency_key": key}
                    for request, key in zip(requests, keys, strict=True)
                ],
                "batch": batch,
            }
        )
        transport = self.amqp or self.http
        accepted: BatchAccepted = await transport.schedule_batch(body)
        return accepted.offsets

    async def cancel(self, offset: int) -> CancelAccepted:
        """Cancel a job: one not started never runs, a running one stops before its next step
        and ends `cancelled`. JobFinishedError if it ended done or failed; twice is harmless."""
        transport = self.amqp or self.http
        return await transport.cancel(offset)

    async def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        fn: str | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first (GET /jobs); the page's `next` is the next cursor."""
        return await self.feed.jobs(
            state=state, fn=fn, tag=tag, since=since, until=until, limit=limit, cursor=cursor
        )

    async def stats(self, minutes: int = 15) -> Stats:
        """Jobs by state, queue depths, workers and throughput (GET /stats)."""
        return await self.feed.stats(minutes)

    def follow_many(
        self,
        *,
        state: JobState | str | None = None,
        fn: str | None = None,
        tag: str | None = None,
        after: int | None = None,
    ) -> AsyncIterator[tuple[int, Reply]]:
        """Every reply of every matching job as `(cursor, reply)`, live, for as long as you
        iterate (GET /jobs/stream)::

            async for cursor, reply in jobs.follow_many(tag="nightly"):
                print(reply.offset, reply.seq, reply.value)

        `after`: a cursor it gave before, to resume there (0: from the first reply ever;
        None: from now). Drops and gateway restarts are waited out and resumed from the
        last cursor: no reply is missed or repeated."""
        return self.feed.follow_many(state=state, fn=fn, tag=tag, after=after)

    async def status(self, offset: int) -> JobRecord:
        """The job as recorded now: state, request, replies, error."""
        return await self.http.job(offset)

    async def messages(self, offset: int) -> list[JsonValue]:
        """The job's values so far (GET /messages/{offset})."""
        return await self.http.messages(offset)

    async def result(
        self, offset: int, wait: bool = True, timeout: float | None = None
    ) -> JobRecord:
        """The job's record; with `wait`, once it is done or failed (see `follow`'s timeout)."""
        if wait:
            async for _ in self.follow(offset, timeout=timeout):
                pass
        return await self.status(offset)

    async def follow(
        self, offset: int, after: int = -1, timeout: float | None = None
    ) -> AsyncIterator[Reply]:
        """Every reply after seq `after`: history, then live, until the final one.

        Once the gateway has answered, a restart or an outage of the gateway is waited out:
        `follow` reconnects with capped backoff and resumes after the last seq it gave, for up
        to `timeout` seconds in all (None, the default: for as long as you iterate; a job may
        legitimately run for hours). Past the timeout it raises TimeoutError. If the first
        request fails, GatewayUnreachableError (or UnavailableError for a 503) comes at once.
        """
        if self.amqp is None:
            async for reply in self.http.follow(offset, after, timeout):
                yield reply
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        async def recorded(since: int) -> list[Reply]:
            # NOTE: the gateway's history, waited for while the gateway restarts; live replies
            # keep arriving on the subscription meanwhile.
            failures = 0
            while True:
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError(f"offset {offset}: no final reply within {timeout}s")
                try:
                    record = await self.http.job(offset)
                except UnavailableError as exc:
                    failures += 1
                    logger.info("gateway not answering (%s); following offset=%s", exc, offset)
                    await asyncio.sleep(min(0.2 * 2.0 ** min(failures, 10), 5.0))
                    continue
                return [r for r in record.replies if r.seq > since]

        record = await self.http.job(offset)
        if record.state.is_final:  # nothing more will come
            for reply in record.replies:
                if reply.seq > after:
                    yield reply
            return

        # NOTE: subscribed before the history is read, so no reply falls between the two.
        async with self.amqp.subscription(offset) as live:
            async for reply in merge(recorded, live, after):
                yield reply
                if deadline is not None and loop.time() >= deadline and not reply.is_final:
                    raise TimeoutError(f"offset {offset}: no final reply within {timeout}s")

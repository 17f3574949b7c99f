"""JobcastClient: schedule jobs and follow their results, over HTTP or AMQP."""

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from pydantic import JsonValue

from client.amqp import AmqpTransport
from client.follow import merge
from client.http import HttpTransport
from contracts import JobAccepted, JobRecord, JobRequest, JobState, Reply

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
        self, url: str = DEFAULT_URL, *, amqp_url: str | None = None, timeout: float = 10.0
    ) -> None:
        self.http = HttpTransport(url, timeout)
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

    async def status(self, offset: int) -> JobRecord:
        """The job as recorded now: state, request, replies, error."""
        return await self.http.job(offset)

    async def messages(self, offset: int) -> list[JsonValue]:
        """The job's values so far (GET /messages/{offset})."""
        return await self.http.messages(offset)

    async def result(self, offset: int, wait: bool = True) -> JobRecord:
        """The job's record; with `wait`, once it is done or failed."""
        if wait:
            async for _ in self.follow(offset):
                pass
        return await self.status(offset)

    async def follow(self, offset: int, after: int = -1) -> AsyncIterator[Reply]:
        """Every reply after seq `after`: history, then live, until the final one."""
        if self.amqp is None:
            async for reply in self.http.follow(offset, after):
                yield reply
            return

        async def recorded(since: int) -> list[Reply]:
            return [r for r in (await self.http.job(offset)).replies if r.seq > since]

        record = await self.http.job(offset)
        if record.state in (JobState.DONE, JobState.FAILED):  # nothing more will come
            for reply in record.replies:
                if reply.seq > after:
                    yield reply
            return

        # NOTE: subscribed before the history is read, so no reply falls between the two.
        async with self.amqp.subscription(offset) as live:
            async for reply in merge(recorded, live, after):
                yield reply

"""A blocking wrapper around JobcastClient, for scripts."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Self

from pydantic import JsonValue

from client.async_client import DEFAULT_URL, JobcastClient
from contracts import JobRecord, JobRequest, Reply
from contracts.control import CancelAccepted


class SyncJobcastClient:
    """JobcastClient's methods, blocking; not for use inside a running event loop."""

    def __init__(
        self, url: str = DEFAULT_URL, *, amqp_url: str | None = None, timeout: float = 10.0
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = self._runner.run(_make(url, amqp_url, timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and the private event loop."""
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def schedule(
        self, *, fn: str, deployment: str, framework: str, idempotency_key: str | None = None
    ) -> int:
        """Schedule a job; returns its offset."""
        return self._runner.run(
            self._client.schedule(
                fn=fn, deployment=deployment, framework=framework, idempotency_key=idempotency_key
            )
        )

    def schedule_many(
        self,
        requests: list[JobRequest],
        *,
        batch: str | None = None,
        idempotency_keys: list[str | None] | None = None,
    ) -> list[int]:
        """Schedule up to 1,000 jobs at once, all or none (see JobcastClient.schedule_many)."""
        return self._runner.run(
            self._client.schedule_many(requests, batch=batch, idempotency_keys=idempotency_keys)
        )

    def cancel(self, offset: int) -> CancelAccepted:
        """Cancel a job (see JobcastClient.cancel)."""
        return self._runner.run(self._client.cancel(offset))

    def status(self, offset: int) -> JobRecord:
        """The job as recorded now."""
        return self._runner.run(self._client.status(offset))

    def messages(self, offset: int) -> list[JsonValue]:
        """The job's values so far."""
        return self._runner.run(self._client.messages(offset))

    def result(self, offset: int, wait: bool = True, timeout: float | None = None) -> JobRecord:
        """The job's record; with `wait`, once it is done or failed."""
        return self._runner.run(self._client.result(offset, wait, timeout))

    def follow(self, offset: int, after: int = -1, timeout: float | None = None) -> Iterator[Reply]:
        """Every reply after `after`, history then live, until the final one; waits out a
        gateway restart for up to `timeout` seconds in all (None: no limit), as
        JobcastClient.follow does."""
        replies = self._client.follow(offset, after, timeout)
        try:
            while True:
                try:
                    yield self._runner.run(_next(replies))
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(_close(replies))


async def _make(url: str, amqp_url: str | None, seconds: float) -> JobcastClient:
    # NOTE: built inside the runner's loop, so its connections belong to that loop.
    return JobcastClient(url, amqp_url=amqp_url, timeout=seconds)


async def _next(replies: AsyncIterator[Reply]) -> Reply:
    return await anext(replies)


async def _close(replies: AsyncIterator[Reply]) -> None:
    close = getattr(replies, "aclose", None)
    if close is not None:
        await close()

"""Group writes of replies: whatever arrived while the last write ran goes in the next one."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from contracts import Reply
from ledger import StoreOutcome

StoreMany = Callable[[Sequence[Reply]], Awaitable[list[StoreOutcome]]]


class ReplyBatcher:
    """Turns many concurrent `store(reply)` calls into few `store_replies(batch)` calls.

    Under no load a reply is written alone, at once; under load, one transaction (and one
    fsync) serves up to `max_batch` replies.
    """

    def __init__(self, store_many: StoreMany, max_batch: int = 256) -> None:
        self._store_many = store_many
        self._max_batch = max_batch
        self._pending: list[tuple[Reply, asyncio.Future[StoreOutcome]]] = []
        self._task: asyncio.Task[None] | None = None

    async def store(self, reply: Reply) -> StoreOutcome:
        """Store one reply; returns once its transaction committed."""
        future: asyncio.Future[StoreOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((reply, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                outcomes = await self._store_many([reply for reply, _ in batch])
            except Exception as exc:  # handed to every waiter, which decides what to do
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

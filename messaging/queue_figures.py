"""How full the job and dead-letter queues are, from a passive declare (no management plugin)."""

import asyncio

import aio_pika.abc

from contracts.errors import BrokerUnavailableError
from contracts.listing import QueueFigures
from contracts.topology import DEAD_QUEUE, JOBS_QUEUE
from messaging.connection import BROKER_FAILURES

TIMEOUT_SECONDS = 5.0


class QueueCounter:
    """Reads the ready messages and consumers of jobcast.jobs and jobcast.dead on demand."""

    def __init__(self) -> None:
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    async def start(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        """Use `connection` from now on (an Attach of the composition root)."""
        self._connection = connection

    async def figures(self) -> QueueFigures:
        """The queues' figures now; BrokerUnavailableError if RabbitMQ does not answer."""
        if self._connection is None:
            raise BrokerUnavailableError("not connected to RabbitMQ yet")
        # NOTE: a passive declare answers with the queue's ready-message and consumer counts
        # (queue.declare-ok) and changes nothing; a channel per call, because a declare of a
        # queue that is missing closes its channel. One call at a time: a page polling /stats
        # from many tabs does not open many channels.
        async with self._lock:
            try:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    channel = await self._connection.channel()
                    try:
                        jobs = await channel.declare_queue(JOBS_QUEUE.name, passive=True)
                        dead = await channel.declare_queue(DEAD_QUEUE.name, passive=True)
                    finally:
                        if not channel.is_closed:
                            await channel.close()
            except BROKER_FAILURES as exc:
                raise BrokerUnavailableError(f"cannot read the queues: {exc!r}") from exc
        jobs_ok, dead_ok = jobs.declaration_result, dead.declaration_result
        return QueueFigures(
            jobs_waiting=jobs_ok.message_count or 0,
            workers=jobs_ok.consumer_count or 0,
            dead_letters=dead_ok.message_count or 0,
        )

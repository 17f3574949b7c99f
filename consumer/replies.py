"""Publishing replies: each step's Reply on jobcast.replies, persistent and confirmed.

The worker's hot path (every job publishes a reply per step), so it talks to aio-pika
directly, on a confirm-mode channel of its own: FastStream's publish machinery cost the worker
more CPU than the publish itself (py-spy, bench/).
"""

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import aio_pika
import aio_pika.abc

from contracts import BrokerUnavailableError, Reply
from contracts.publishing import BROKER_FAILURES
from contracts.topology import REPLIES_EXCHANGE, reply_key

Headers = dict[str, str]
AroundPublish = Callable[[Reply], AbstractContextManager[Headers]]
"""Wraps one publish (a tracing span, say); yields headers the message is to carry."""


def _no_headers(reply: Reply) -> AbstractContextManager[Headers]:
    return nullcontext({})


class ReplyPublisher:
    """Publishes Replies with routing key reply.<offset>; `publish` returns once confirmed.

    Publishes may overlap: RabbitMQ confirms them in any order, a channel keeps their order.
    A publish has no deadline of its own (a timer each cost more than the publish): callers
    bound the wait, as `run_job` does with one deadline per job.
    """

    def __init__(
        self,
        *,
        around: AroundPublish = _no_headers,
        published: Callable[[Reply], None] | None = None,
    ) -> None:
        self.around = around
        self.published = published
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Open the channel (restored with the connection, if robust)."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._channel.get_exchange(REPLIES_EXCHANGE.name, ensure=False)

    async def close(self) -> None:
        if self._channel is None or self._channel.is_closed:
            return
        try:  # the broker may be gone: a robust channel would wait for it to come back
            async with asyncio.timeout(2.0):
                await self._channel.close()
        except (TimeoutError, *BROKER_FAILURES):
            pass

    async def publish(self, reply: Reply) -> None:
        """Publish `reply`; BrokerUnavailableError if RabbitMQ refused or returned it, or the
        channel is gone.

        Mandatory: a reply no queue would take (no jobcast.ledger) counts as not confirmed.
        """
        if self._exchange is None:
            raise BrokerUnavailableError("the reply publisher is not started")
        with self.around(reply) as headers:
            message = aio_pika.Message(
                reply.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=headers or None,  # type: ignore[arg-type]
            )
            try:
                await self._exchange.publish(
                    message, routing_key=reply_key(reply.offset), mandatory=True
                )
            except BROKER_FAILURES as exc:
                raise BrokerUnavailableError(
                    f"RabbitMQ did not confirm the reply: {type(exc).__name__}: {exc}".rstrip(": ")
                ) from exc
        if self.published is not None:
            self.published(reply)

"""Answers to AMQP requests (RPC), on a connection of their own.

Where an answer goes is the sender's to choose (its `reply_to`), and RabbitMQ 3.10 answers a
publish to some addresses by closing the whole *connection* (541 INTERNAL_ERROR): one shaped
like a direct reply-to address (`amq.rabbitmq.reply-to.<pid>.<key>`) that names no live
channel. On the connection the gateway consumes and publishes jobs on, one such request took
every consumer down with it, and a question redelivered after the loss closed it again, for
ever. Here only answers are lost with it: an answer is a courtesy (what it answers is settled
already), and the robust connection comes back for the next one.
"""

import logging

import aio_pika
import aio_pika.abc
from pydantic import BaseModel

from messaging.connection import BROKER_FAILURES, goodbye

logger = logging.getLogger(__name__)


class Answers:
    """Publishes answers to the `reply_to` of requests, on a channel of a connection that
    carries nothing else."""

    def __init__(self) -> None:
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Open the channel on `connection`, one opened for answers only."""
        # NOTE: no publisher confirms: an answer to a vanished caller may simply be dropped.
        self._channel = await connection.channel(publisher_confirms=False)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await goodbye(self._channel.close())

    async def send(self, reply_to: str | None, correlation_id: str | None, body: BaseModel) -> None:
        """Answer `body` to `reply_to` (nothing without one); dropped, with a log line, while
        the connection is down."""
        if not reply_to or self._channel is None:
            return
        # NOTE: RabbitMQ (3.10 here) delivers a mandatory publish to a direct reply-to address
        # (amq.rabbitmq.reply-to.*) and *also* returns it as NO_ROUTE, so answers go without
        # mandatory.
        answer = aio_pika.Message(
            body.model_dump_json().encode(),
            content_type="application/json",
            correlation_id=correlation_id,
        )
        try:
            await self._channel.default_exchange.publish(
                answer, routing_key=reply_to, mandatory=False
            )
        except BROKER_FAILURES:
            logger.info("could not answer %s: the answers' connection is down", reply_to[:80])

"""Publishing with publisher confirms, and dead-lettering with a reason: the two ways
every jobcast process hands a message to RabbitMQ."""

import asyncio
import logging
from typing import Any

import aio_pika
import aio_pika.abc
import aiormq
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from pydantic import BaseModel

from contracts.errors import BrokerUnavailableError
from contracts.topology import DEAD_LETTER_EXCHANGE, HEADER_REASON, HEADER_SOURCE

logger = logging.getLogger(__name__)

_CONNECTION_FAILURES = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)
BROKER_FAILURES = (*_CONNECTION_FAILURES, TimeoutError)
_DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


async def publish_confirmed(
    broker: RabbitBroker,
    message: BaseModel | bytes,
    *,
    timeout: float,
    queue: RabbitQueue | None = None,
    exchange: RabbitExchange | None = None,
    routing_key: str = "",
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> None:
    """Publish persistently and return once RabbitMQ confirmed; BrokerUnavailableError if not.

    A message no queue would take (mandatory, returned) counts as not confirmed.
    """
    try:
        async with asyncio.timeout(timeout):
            await broker.publish(
                message,
                queue=queue or "",
                exchange=exchange,
                routing_key=routing_key,
                persist=True,
                mandatory=True,
                headers=headers,
                message_id=message_id,
            )
    except BROKER_FAILURES as exc:
        raise BrokerUnavailableError(
            f"RabbitMQ did not confirm the message: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from exc


async def request_reply(
    broker: RabbitBroker, message: BaseModel, *, queue: RabbitQueue, timeout: float
) -> bytes:
    """Send `message` to `queue` and return the body of its answer (RPC, direct reply-to).

    Raises TimeoutError if nobody answered within `timeout`, BrokerUnavailableError if the
    broker connection is down.
    """
    # NOTE: FastStream's broker.request() consumes on a *robust* reply queue that aio-pika
    # re-consumes when it restores a connection. A request made while a reconnect is being
    # restored (a redelivered job asking where to resume) can then break the restore
    # (DuplicateConsumerTag) and leave the worker connected but consuming nothing. So the
    # RPC gets a plain, short-lived channel of its own, which aio-pika never restores.
    connection = getattr(broker, "_connection", None)
    if connection is None or not connection.connected.is_set():
        raise BrokerUnavailableError(f"RPC to {queue.name}: RabbitMQ is unreachable")
    try:
        async with (
            asyncio.timeout(timeout),
            aio_pika.Channel(connection, publisher_confirms=False) as channel,
        ):
            answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def on_answer(answer: aio_pika.abc.AbstractIncomingMessage) -> None:
                if not answered.done():
                    answered.set_result(answer.body)

            replies = await channel.get_queue(_DIRECT_REPLY_TO, ensure=False)
            await replies.consume(on_answer, no_ack=True)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.model_dump_json().encode(),
                    reply_to=_DIRECT_REPLY_TO,
                    content_type="application/json",
                ),
                routing_key=queue.name,
            )
            return await answered
    except _CONNECTION_FAILURES as exc:
        raise BrokerUnavailableError(f"RPC to {queue.name} failed: {exc!r}") from exc


async def dead_letter(
    broker: RabbitBroker,
    message: RabbitMessage,
    *,
    reason: str,
    source: RabbitQueue,
    timeout: float = 5.0,
) -> None:
    """Move `message` to jobcast.dead with the reason in its headers, then ack the original.

    If the dead-letter copy is not confirmed the original is rejected instead, so the broker's
    own dead-lettering keeps it: either way nothing is lost and the queue moves on.
    """
    raw = message.raw_message
    if await copy_to_dead_letters(broker, raw, reason=reason, source=source, timeout=timeout):
        await message.ack()
    else:
        await message.reject(requeue=False)


async def copy_to_dead_letters(
    broker: RabbitBroker,
    raw: aio_pika.abc.AbstractIncomingMessage,
    *,
    reason: str,
    source: RabbitQueue,
    timeout: float = 5.0,
) -> bool:
    """Publish a copy of `raw` to jobcast.dead with the reason in its headers; True once
    RabbitMQ confirmed it. Settling the original is the caller's part."""
    headers = {**(raw.headers or {}), HEADER_REASON: reason[:1000], HEADER_SOURCE: source.name}
    logger.warning(
        "dead-lettering message_id=%s from=%s reason=%s", raw.message_id, source.name, reason[:200]
    )
    try:
        await publish_confirmed(
            broker,
            raw.body,
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=source.name,
            headers=headers,
            message_id=raw.message_id,
            timeout=timeout,
        )
    except BrokerUnavailableError:
        return False
    return True

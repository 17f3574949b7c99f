"""Publishing with publisher confirms, and dead-lettering with a reason: the two ways
every jobcast process hands a message to RabbitMQ."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import aio_pika
import aio_pika.abc
import aiormq
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue
from pydantic import BaseModel

from contracts.errors import BrokerUnavailableError
from contracts.topology import (
    DEAD_LETTER_BODY_LIMIT,
    DEAD_LETTER_EXCHANGE,
    HEADER_DELIVERY_COUNT,
    HEADER_EXCHANGE,
    HEADER_ORIGINAL_SIZE,
    HEADER_REASON,
    HEADER_ROUTING_KEY,
    HEADER_SOURCE,
    HEADER_TRUNCATED,
    HEADER_USER_ID,
)

logger = logging.getLogger(__name__)

_CONNECTION_FAILURES = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)
BROKER_FAILURES = (*_CONNECTION_FAILURES, TimeoutError)
_DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

Headers = dict[str, str]
AroundPublish = Callable[[str, str], AbstractContextManager[Headers]]
"""Wraps one publish to (exchange, routing key), a tracing span say; yields the headers the
message is to carry."""


def no_headers(exchange: str, routing_key: str) -> AbstractContextManager[Headers]:
    return nullcontext({})


class ConfirmedChannel:
    """A confirm-mode aio-pika channel of its own, for the hot paths (jobs, replies).

    FastStream's publish machinery cost more CPU than the publish itself (py-spy, bench/), so
    these publish with aio-pika directly. Publishes may overlap: RabbitMQ confirms them in any
    order, a channel keeps their order. A publish has no deadline of its own (a timer each
    cost ~10% of a worker's CPU): callers bound the wait.
    """

    def __init__(self, *, around: AroundPublish = no_headers) -> None:
        self.around = around
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Open the channel (restored with the connection, if robust)."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await goodbye(self._channel.close())

    async def publish(
        self, body: bytes, *, exchange: str, routing_key: str, headers: Headers | None = None
    ) -> None:
        """Publish persistently and mandatorily, with `headers`; return once RabbitMQ confirmed it.

        BrokerUnavailableError if it refused or returned it (no queue would take it) or the
        channel is gone.
        """
        if self._channel is None:
            raise BrokerUnavailableError("the publishing channel is not open")
        with self.around(exchange, routing_key) as carried:
            message = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={**carried, **(headers or {})} or None,
            )
            try:
                await (await self._exchange(exchange)).publish(
                    message, routing_key=routing_key, mandatory=True
                )
            except BROKER_FAILURES as exc:
                raise _not_confirmed(exc) from exc

    async def _exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        assert self._channel is not None
        if name not in self._exchanges:
            self._exchanges[name] = (
                await self._channel.get_exchange(name, ensure=False)
                if name
                else self._channel.default_exchange
            )
        return self._exchanges[name]


async def publish_confirmed(
    broker: RabbitBroker,
    message: BaseModel | bytes | aio_pika.Message,
    *,
    timeout: float,
    queue: RabbitQueue | None = None,
    exchange: RabbitExchange | None = None,
    routing_key: str = "",
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> None:
    """Publish persistently and return once RabbitMQ confirmed; BrokerUnavailableError if not.

    A message no queue would take (mandatory, returned) counts as not confirmed. A ready
    aio-pika Message goes as it is (its own delivery mode and properties).
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
        raise _not_confirmed(exc) from exc


async def goodbye(closing: Awaitable[object], seconds: float = 2.0) -> None:
    """Await a goodbye to the broker (cancel a consumer, close a channel) that may not be
    there any more: a robust channel would wait for it to come back, so this gives up."""
    try:
        async with asyncio.timeout(seconds):
            await closing
    except (TimeoutError, *BROKER_FAILURES):
        logger.debug("a goodbye to the broker did not finish", exc_info=True)


def _not_confirmed(exc: BaseException) -> BrokerUnavailableError:
    text = f"RabbitMQ did not confirm the message: {type(exc).__name__}: {exc}"
    return BrokerUnavailableError(text.rstrip(": "))


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


async def copy_to_dead_letters(
    broker: RabbitBroker,
    raw: aio_pika.abc.AbstractIncomingMessage,
    *,
    reason: str,
    source: RabbitQueue,
    timeout: float = 5.0,
) -> bool:
    """Publish `dead_letter_copy(raw)` to jobcast.dead; True once RabbitMQ confirmed it.
    Settling the original is the caller's part."""
    copy = dead_letter_copy(raw, reason=reason, source=source)
    logger.warning(
        "dead-lettering message_id=%s from=%s size=%d reason=%s",
        raw.message_id,
        source.name,
        len(raw.body),
        reason[:200],
    )
    try:
        await publish_confirmed(
            broker,
            copy,
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=source.name,
            # NOTE: FastStream publishes a ready aio-pika Message as it is; the headers go
            # along too so that its publish middlewares (jobcast_dead_lettered_total) see them.
            headers=copy.headers,
            message_id=raw.message_id,
            timeout=timeout,
        )
    except BrokerUnavailableError:
        return False
    return True


def dead_letter_copy(
    raw: aio_pika.abc.AbstractIncomingMessage,
    *,
    reason: str,
    source: RabbitQueue,
    body_limit: int = DEAD_LETTER_BODY_LIMIT,
) -> aio_pika.Message:
    """What jobcast.dead gets for `raw`: its properties and headers, where it came from and
    why, and at most `body_limit` bytes of its body (the headers say if it was cut)."""
    headers: dict[str, Any] = dict(raw.headers or {})
    # NOTE: the queue's count, not the copy's: a copy moved back to jobcast.jobs must not
    # carry it (the worker would take it for deliveries of its own and give up early).
    delivery_count = headers.pop("x-delivery-count", 0)
    headers |= {
        HEADER_REASON: reason[:1000],
        HEADER_SOURCE: source.name,
        HEADER_EXCHANGE: raw.exchange or "",
        HEADER_ROUTING_KEY: raw.routing_key or "",
        HEADER_DELIVERY_COUNT: delivery_count if _is_count(delivery_count) else 0,
    }
    if raw.user_id:
        # NOTE: never as the user_id property: RabbitMQ checks it against the connection that
        # publishes the copy, which is jobcast's, and would refuse it.
        headers[HEADER_USER_ID] = raw.user_id
    body = raw.body
    if len(body) > body_limit:
        headers |= {HEADER_TRUNCATED: True, HEADER_ORIGINAL_SIZE: len(body)}
        body = body[:body_limit]
    # NOTE: no expiration: a TTL meant for the live queue would make the dead letter vanish.
    return aio_pika.Message(
        body,
        headers=headers,
        content_type=raw.content_type,
        content_encoding=raw.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=raw.message_id,
        correlation_id=raw.correlation_id,
        reply_to=raw.reply_to,
        timestamp=raw.timestamp,
        type=raw.type,
        app_id=raw.app_id,
    )


def _is_count(value: object) -> bool:
    # NOTE: a header from the wire: `type() is int`, since True is an int to Python.
    return type(value) is int and value >= 0


def dead_letters_via(
    broker: RabbitBroker, source: RabbitQueue
) -> Callable[[aio_pika.abc.AbstractIncomingMessage, str], Awaitable[bool]]:
    """`copy_to_dead_letters` for messages of `source`, as the aio-pika consumers take it."""

    async def to_dead_letters(raw: aio_pika.abc.AbstractIncomingMessage, reason: str) -> bool:
        return await copy_to_dead_letters(broker, raw, reason=reason, source=source)

    return to_dead_letters

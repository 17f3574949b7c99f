"""Dead letters: jobcast's own copy of a message it gives up on, on jobcast.dead with why."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aio_pika.abc
from faststream.rabbit import RabbitBroker

from contracts.errors import BrokerUnavailableError, DeadLetterReason
from contracts.headers import (
    DELIVERY_COUNT,
    HEADER_DELIVERY_COUNT,
    HEADER_EXCHANGE,
    HEADER_KEY,
    HEADER_ORIGINAL_SIZE,
    HEADER_REASON,
    HEADER_REASON_CODE,
    HEADER_ROUTING_KEY,
    HEADER_SOURCE,
    HEADER_TRUNCATED,
    HEADER_USER_ID,
)
from contracts.topology import DEAD_LETTER_BODY_LIMIT, DEAD_LETTER_EXCHANGE, Queue
from messaging.connection import delivery_count, writable_headers
from messaging.publishing import publish_confirmed

logger = logging.getLogger(__name__)


async def copy_to_dead_letters(
    broker: RabbitBroker,
    raw: aio_pika.abc.AbstractIncomingMessage,
    *,
    reason: DeadLetterReason,
    detail: str,
    source: Queue,
    timeout: float = 5.0,
) -> bool:
    """Publish `dead_letter_copy(raw)` to jobcast.dead; True once RabbitMQ confirmed it.
    Settling the original is the caller's part."""
    copy = dead_letter_copy(raw, reason=reason, detail=detail, source=source)
    logger.warning(
        "dead-lettering message_id=%s from=%s size=%d reason=%s detail=%s",
        raw.message_id,
        source.name,
        len(raw.body),
        reason.value,
        detail[:200],
    )
    try:
        await publish_confirmed(
            broker,
            copy,
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=source.name,
            timeout=timeout,
        )
    except BrokerUnavailableError:
        return False
    return True


def dead_letter_copy(
    raw: aio_pika.abc.AbstractIncomingMessage,
    *,
    reason: DeadLetterReason,
    detail: str,
    source: Queue,
    body_limit: int = DEAD_LETTER_BODY_LIMIT,
) -> aio_pika.Message:
    """What jobcast.dead gets for `raw`: its properties and headers, where it came from, why
    (the reason's code, and `detail` in words), and at most `body_limit` bytes of its body (the
    headers say if it was cut)."""
    # NOTE: the sender's API key is a secret: jobcast.dead is read by operators and scripts.
    # AMQP header names are case-sensitive, so every spelling of it goes.
    headers: dict[str, Any] = {
        name: value
        for name, value in writable_headers(raw.headers).items()
        if name.lower() != HEADER_KEY
    }
    # NOTE: the queue's count, not the copy's: a copy moved back to jobcast.jobs must not
    # carry it (the worker would take it for deliveries of its own and give up early).
    count = delivery_count(headers)
    headers.pop(DELIVERY_COUNT, None)
    headers |= {
        HEADER_REASON: detail[:1000],
        HEADER_REASON_CODE: reason.value,
        HEADER_SOURCE: source.name,
        HEADER_EXCHANGE: raw.exchange or "",
        HEADER_ROUTING_KEY: raw.routing_key or "",
        HEADER_DELIVERY_COUNT: count,
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


def dead_letters_via(
    broker: RabbitBroker, source: Queue
) -> Callable[[aio_pika.abc.AbstractIncomingMessage, DeadLetterReason, str], Awaitable[bool]]:
    """`copy_to_dead_letters` for messages of `source`, as the aio-pika consumers take it."""

    async def to_dead_letters(
        raw: aio_pika.abc.AbstractIncomingMessage, reason: DeadLetterReason, detail: str
    ) -> bool:
        return await copy_to_dead_letters(broker, raw, reason=reason, detail=detail, source=source)

    return to_dead_letters

"""Connecting to RabbitMQ, and what "the broker is gone" looks like."""

import asyncio
import logging
from collections.abc import Awaitable, Mapping

import aio_pika
import aio_pika.abc
import aiormq

from contracts.errors import BrokerUnavailableError
from contracts.headers import DELIVERY_COUNT
from contracts.urls import masked_url, scrubbed

logger = logging.getLogger(__name__)

BROKER_FAILURES = (
    aiormq.exceptions.AMQPError,  # aio-pika's AMQPException too: the same class
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel is closed
    OSError,  # ConnectionError, an unresolvable host, and TimeoutError
)
"""Every exception that means the broker, or the connection or channel to it, is gone or did
not answer in time. TimeoutError is among them (an OSError): a caller for whom a deadline means
something else (no answer to a question) catches it first."""


async def connect(
    amqp_url: str, *, timeout: float | None = None
) -> aio_pika.abc.AbstractRobustConnection:
    """A robust aio-pika connection (restored after a loss); BrokerUnavailableError if
    RabbitMQ cannot be reached now."""
    try:
        return await aio_pika.connect_robust(amqp_url, reconnect_interval=1.0, timeout=timeout)
    except BROKER_FAILURES as exc:
        raise unreachable(amqp_url, exc) from exc


def unreachable(amqp_url: str, exc: BaseException) -> BrokerUnavailableError:
    """The error that says RabbitMQ at `amqp_url` cannot be reached, never with the password."""
    return BrokerUnavailableError(
        f"cannot reach RabbitMQ at {masked_url(amqp_url)}: {scrubbed(str(exc), amqp_url)}"
    )


async def goodbye(closing: Awaitable[object], seconds: float = 2.0) -> None:
    """Await a goodbye to the broker (cancel a consumer, close a channel) that may not be
    there any more: a robust channel would wait for it to come back, so this gives up."""
    try:
        async with asyncio.timeout(seconds):
            await closing
    except BROKER_FAILURES:  # TimeoutError among them
        logger.debug("a goodbye to the broker did not finish", exc_info=True)


Headers = Mapping[str, object]


def header_count(headers: Headers | None, name: str) -> int:
    """The count in header `name`: 0 if absent, or if it is no count (headers come from the
    wire: anyone who may publish may set them to anything)."""
    value = (headers or {}).get(name)
    if value is None:
        return 0
    # NOTE: `type(...) is int`, not isinstance: True is an int to Python, not a count to us.
    if type(value) is not int or value < 0:
        logger.warning("ignoring %s=%r: not a count", name, value)
        return 0
    return value


def delivery_count(headers: Headers | None) -> int:
    """RabbitMQ's x-delivery-count of a message: 0 on the first delivery (or if malformed)."""
    return header_count(headers, DELIVERY_COUNT)

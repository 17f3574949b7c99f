"""Connecting to RabbitMQ (one node, or the first of a cluster's that answers, moving to
another when it is lost), and what "the broker is gone" looks like."""

import asyncio
import itertools
import logging
import struct
from collections.abc import Awaitable, Mapping

import aio_pika
import aio_pika.abc
import aiormq
import pamqp.encode
from aio_pika.connection import make_url

from contracts.errors import BrokerUnavailableError
from contracts.headers import DELIVERY_COUNT
from contracts.urls import masked_url, node_urls, scrubbed

logger = logging.getLogger(__name__)

BROKER_FAILURES = (
    aiormq.exceptions.AMQPError,  # aio-pika's AMQPException too: the same class
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel is closed
    OSError,  # ConnectionError, an unresolvable host, and TimeoutError
)
"""Every exception that means the broker, or the connection or channel to it, is gone or did
not answer in time. TimeoutError is among them (an OSError): a caller for whom a deadline means
something else (no answer to a question) catches it first."""


RECONNECT_SECONDS = 1.0
"""Pause between two attempts to restore a lost connection (each to the next node)."""


async def connect(
    amqp_url: str, *, timeout: float | None = None
) -> aio_pika.abc.AbstractRobustConnection:
    """A robust aio-pika connection to the first node of `amqp_url` that answers, restored
    after a loss on the next node that answers (follow_nodes); BrokerUnavailableError if no
    node can be reached now."""
    nodes = node_urls(amqp_url)
    failure: BaseException | None = None
    for index, node in enumerate(nodes):
        try:
            connection = await aio_pika.connect_robust(
                node, reconnect_interval=RECONNECT_SECONDS, timeout=timeout
            )
        except BROKER_FAILURES as exc:
            logger.info("RabbitMQ node %s did not answer: %s", masked_url(node), exc)
            failure = exc
            continue
        follow_nodes(connection, nodes, index)
        return connection
    assert failure is not None  # node_urls names at least one node
    raise unreachable(amqp_url, failure) from failure


async def connect_once(amqp_url: str) -> aio_pika.abc.AbstractConnection:
    """A plain (not robust) connection to the first node of `amqp_url` that answers, for a
    short task (declaring the topology); BROKER_FAILURES of the last node if none does."""
    nodes = node_urls(amqp_url)
    for node in nodes[:-1]:
        try:
            return await aio_pika.connect(node)
        except BROKER_FAILURES as exc:
            logger.info("RabbitMQ node %s did not answer: %s", masked_url(node), exc)
    return await aio_pika.connect(nodes[-1])


def follow_nodes(
    connection: aio_pika.abc.AbstractConnection, nodes: tuple[str, ...], current: int
) -> None:
    """Each time `connection` (connected to `nodes[current]`) is lost, and each time an attempt
    to restore it fails, its next attempt goes to the next node, round the list.

    aio-pika restores a robust connection to the URL it holds, one address only. It calls the
    connection's close callbacks on every loss and on every failed attempt (the failure as the
    exception), and reads `connection.url` at each attempt: both public, so moving the URL there
    moves the connection. Channels, consumers and their queues are then restored on that node.
    """
    if len(nodes) < 2:
        return
    following = itertools.cycle(nodes[current + 1 :] + nodes[: current + 1])

    def move_on(sender: aio_pika.abc.AbstractConnection | None, exc: BaseException | None) -> None:
        if sender is None or sender.is_closed:  # closed by us: nothing to restore
            return
        node = next(following)
        logger.info("RabbitMQ connection lost (%s); next attempt: %s", exc, masked_url(node))
        # NOTE: `url` is Connection's public attribute; tests/integration/test_cluster_nodes.py
        # fails on an aio-pika that stops reading it per attempt or calling close callbacks.
        sender.url = make_url(node)  # type: ignore[attr-defined]

    connection.close_callbacks.add(move_on)


def unreachable(amqp_url: str, exc: BaseException) -> BrokerUnavailableError:
    """The error that says RabbitMQ at `amqp_url` (every node of it) cannot be reached, never
    with the password."""
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
        logger.warning("ignoring %s=%.80r: not a count", name, value)  # the sender chose it
        return 0
    return value


def delivery_count(headers: Headers | None) -> int:
    """RabbitMQ's x-delivery-count of a message: 0 on the first delivery (or if malformed)."""
    return header_count(headers, DELIVERY_COUNT)


def writable_headers(headers: Headers | None) -> dict[str, object]:
    """`headers` as read, made fit to be published again: a copy of a message (to jobcast.dead,
    a hand-back) carries the original's headers, and pamqp cannot write back every value it
    reads (a long string that is not UTF-8 is read as bytes, a double is written as a 32-bit
    float). Bytes go as a byte array, any other value that cannot be written as its repr."""
    return {name: _writable(value) for name, value in (headers or {}).items()}


def _writable(value: object) -> object:
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return writable_headers(value)
    if isinstance(value, list):
        return [_writable(item) for item in value]
    try:
        pamqp.encode.encode_table_value(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, struct.error):
        return repr(value)[:200]
    return value

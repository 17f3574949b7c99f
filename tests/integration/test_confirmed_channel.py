"""ConfirmedChannel on the real broker: what it publishes arrives persistent, with its headers,
in the order published; a message no queue takes, a closed channel or a lost connection is
BrokerUnavailableError, never a silent success."""

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest

from contracts.errors import BrokerUnavailableError
from contracts.topology import JOBS_QUEUE
from messaging.declare import declare_topology
from messaging.publishing import ConfirmedChannel


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    await declare_topology(amqp_url)
    async with await aio_pika.connect_robust(amqp_url) as opened:
        yield opened


@pytest.fixture
async def channel(
    connection: aio_pika.abc.AbstractRobustConnection,
) -> AsyncIterator[ConfirmedChannel]:
    confirmed = ConfirmedChannel()
    await confirmed.start(connection)
    yield confirmed
    await confirmed.close()


async def _taken(connection: aio_pika.abc.AbstractConnection, n: int) -> list[aio_pika.Message]:
    reading = await connection.channel()
    queue = await reading.get_queue(JOBS_QUEUE.name)
    found: list[aio_pika.Message] = []
    while len(found) < n:
        message = await queue.get(no_ack=True, fail=False, timeout=5)
        if message is None:
            await asyncio.sleep(0.01)
            continue
        found.append(message)
    await reading.close()
    return found


async def test_published_messages_arrive_persistent_with_their_headers_in_order(
    connection: aio_pika.abc.AbstractRobustConnection, channel: ConfirmedChannel
) -> None:
    bodies = [f'{{"n": {n}}}'.encode() for n in range(20)]
    await asyncio.gather(
        *(
            channel.publish(body, exchange="", routing_key=JOBS_QUEUE.name, headers={"x-n": str(n)})
            for n, body in enumerate(bodies)
        )
    )
    taken = await _taken(connection, len(bodies))
    assert [m.body for m in taken] == bodies
    assert {m.delivery_mode for m in taken} == {aio_pika.DeliveryMode.PERSISTENT}
    assert {m.content_type for m in taken} == {"application/json"}
    assert [m.headers["x-n"] for m in taken] == [str(n) for n in range(20)]


async def test_a_message_no_queue_takes_is_not_confirmed(channel: ConfirmedChannel) -> None:
    with pytest.raises(BrokerUnavailableError, match="did not confirm"):
        await channel.publish(b"{}", exchange="", routing_key="jobcast.no-such-queue")
    # the channel is still good for the next message
    await channel.publish(b"{}", exchange="", routing_key=JOBS_QUEUE.name)


async def test_not_mandatory_a_message_no_queue_takes_is_dropped_quietly(
    channel: ConfirmedChannel,
) -> None:
    await channel.publish(b"{}", exchange="", routing_key="jobcast.no-such-queue", mandatory=False)


async def test_an_unknown_exchange_or_a_closed_channel_is_not_confirmed(
    connection: aio_pika.abc.AbstractRobustConnection,
) -> None:
    confirmed = ConfirmedChannel()
    with pytest.raises(BrokerUnavailableError, match="not open"):
        await confirmed.publish(b"{}", exchange="", routing_key=JOBS_QUEUE.name)
    await confirmed.start(connection)
    with pytest.raises(BrokerUnavailableError):
        await confirmed.publish(b"{}", exchange="jobcast.no-such-exchange", routing_key="x")
    await confirmed.close()
    with pytest.raises(BrokerUnavailableError):
        await confirmed.publish(b"{}", exchange="", routing_key=JOBS_QUEUE.name)

"""The aio-pika consumers' common rules, on the real broker: a handler that crashes never
stalls its queue, and stopping lets the messages being handled finish."""

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest

from contracts.errors import DeadLetterReason
from contracts.topology import DEAD_QUEUE, JOBS_QUEUE
from messaging.consumer import Consumer, Message
from messaging.declare import declare_topology
from tests.support.waiting import eventually


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    await declare_topology(amqp_url)
    async with await aio_pika.connect_robust(amqp_url) as opened:
        yield opened


class Handling(Consumer):
    """Acks every message, except that it crashes on b"boom" and is slow on b"slow"."""

    def __init__(self) -> None:
        super().__init__(JOBS_QUEUE, self.never_dead_letters, prefetch=8)
        self.handled: list[bytes] = []
        self.attempts = 0
        self.taken = asyncio.Event()

    @staticmethod
    async def never_dead_letters(message: Message, reason: DeadLetterReason, detail: str) -> bool:
        raise AssertionError("no handler here dead-letters")

    async def handle(self, message: Message) -> None:
        if message.body == b"boom":
            self.attempts += 1
            raise RuntimeError("a bug in the handler")
        if message.body == b"slow":
            self.taken.set()
            await asyncio.sleep(0.5)
        self.handled.append(message.body)
        await message.ack()


async def put(connection: aio_pika.abc.AbstractConnection, *bodies: bytes) -> None:
    channel = await connection.channel(publisher_confirms=True)
    for body in bodies:
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=JOBS_QUEUE.name)
    await channel.close()


async def dead_letters(connection: aio_pika.abc.AbstractConnection) -> list[bytes]:
    channel = await connection.channel()
    queue = await channel.get_queue(DEAD_QUEUE.name)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(message.body)
    await channel.close()
    return found


async def test_a_handler_that_crashes_never_stalls_the_queue(connection):
    consumer = Handling()
    await consumer.start(connection)
    await put(connection, b"boom", b"fine")

    await eventually(lambda: _handled(consumer), until=lambda h: b"fine" in h, what="next one")
    # handed back each time, until the queue's delivery limit moves it to jobcast.dead
    assert await eventually(
        lambda: dead_letters(connection), until=lambda d: d == [b"boom"], what="dead-lettered"
    )
    assert consumer.attempts > 1
    await consumer.stop(timeout=5)


async def test_stop_lets_the_messages_being_handled_finish(connection):
    consumer = Handling()
    await consumer.start(connection)
    await put(connection, b"slow")
    await asyncio.wait_for(consumer.taken.wait(), 15)  # taken, being handled

    await consumer.stop(timeout=5)

    assert consumer.handled == [b"slow"]


async def _handled(consumer: Handling) -> list[bytes]:
    return consumer.handled

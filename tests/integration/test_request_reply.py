"""The progress RPC on the real broker: a plain channel of its own, never restored by aio-pika."""

import aio_pika
import pytest
from faststream.rabbit import ExchangeType as RabbitExchangeType
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue

from contracts import BrokerUnavailableError, Progress, ProgressQuery
from contracts.topology import Exchange, ExchangeType
from messaging.rpc import request_reply

QUESTIONS = RabbitQueue("test.progress", auto_delete=True)
ASK = Exchange("test.ask", ExchangeType.FANOUT)
ASKED = RabbitExchange(ASK.name, type=RabbitExchangeType.FANOUT, auto_delete=True)


async def test_the_answer_comes_back(amqp_url: str):
    broker = RabbitBroker(amqp_url)

    @broker.subscriber(QUESTIONS, ASKED)
    async def answer(query: ProgressQuery) -> Progress:
        return Progress(offset=query.offset, next_seq=2, previous="/0/1")

    async with broker:
        await broker.start()
        connection = await broker.connect()  # the broker's own, as the workers' consumers get it
        body = await request_reply(connection, ProgressQuery(offset=7), exchange=ASK, timeout=5)
    assert Progress.model_validate_json(body) == Progress(offset=7, next_seq=2, previous="/0/1")


async def test_nobody_answering_is_a_timeout(amqp_url: str):
    broker = RabbitBroker(amqp_url)
    async with broker:
        await broker.start()
        queue = await broker.declare_queue(QUESTIONS)
        await queue.bind(await broker.declare_exchange(ASKED))
        with pytest.raises(TimeoutError):
            await request_reply(
                await broker.connect(), ProgressQuery(offset=7), exchange=ASK, timeout=0.5
            )


async def test_a_broker_that_is_not_connected_is_unavailable(amqp_url: str):
    closed = await aio_pika.connect_robust(amqp_url)
    await closed.close()
    for connection in (None, closed):  # not opened yet, or gone
        with pytest.raises(BrokerUnavailableError):
            await request_reply(connection, ProgressQuery(offset=7), exchange=ASK, timeout=0.5)

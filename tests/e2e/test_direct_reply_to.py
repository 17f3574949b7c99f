"""AMQP submission answered on RabbitMQ's direct reply-to, as jobcast's own client asks."""

import asyncio
import uuid

import aio_pika
import orjson

from contracts.topology import DIRECT_REPLY_TO

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def test_answers_on_direct_reply_to_arrive_without_errors(spawn, jobcast_env, amqp_url):
    gateway = spawn("gateway", jobcast_env, name="gateway")
    gateway.wait_http()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        answers: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        direct = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await direct.consume(answers.put, no_ack=True)
        sent = [uuid.uuid4().hex for _ in range(3)]
        for correlation_id in sent:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    orjson.dumps(JOB),
                    correlation_id=correlation_id,
                    reply_to=DIRECT_REPLY_TO,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="jobcast.schedule",
            )
        got = {}
        async with asyncio.timeout(15):
            while len(got) < len(sent):
                answer = await answers.get()
                got[answer.correlation_id] = orjson.loads(answer.body)
        # NOTE: a barrier, not a pause: whatever the broker says about an answer (a NO_ROUTE
        # return) goes to the gateway on the channel it consumes on, ahead of any request
        # delivered later; once a fourth request is answered, the gateway has read all of it.
        await channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps(JOB), reply_to=DIRECT_REPLY_TO),
            routing_key="jobcast.schedule",
        )
        async with asyncio.timeout(15):
            await answers.get()
    assert sorted(got) == sorted(sent)
    assert sorted(a["offset"] for a in got.values()) == [0, 1, 2]
    # RabbitMQ returns mandatory publishes to direct reply-to as NO_ROUTE even though it
    # delivered them; the gateway must not treat its answers as failed
    assert "NO_ROUTE" not in gateway.log()
    assert "ERROR" not in gateway.log()

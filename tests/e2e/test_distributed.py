"""`jobcast gateway` and two `jobcast worker`s, driven over HTTP and AMQP as services do."""

import asyncio
import uuid

import aio_pika
import httpx
import orjson
import pytest

from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]


@pytest.fixture
def cluster(spawn, jobcast_env):
    gateway = spawn("gateway", jobcast_env, name="gateway")
    workers = [spawn("worker", jobcast_env, name=f"worker-{i}") for i in range(2)]
    gateway.wait_http()
    for worker in workers:
        worker.wait_log("worker consuming")
    return gateway, workers


async def test_jobs_spread_over_both_workers_and_all_complete(cluster):
    gateway, workers = cluster
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offsets = [(await http.post("/schedule", json=JOB)).json()["offset"] for _ in range(6)]
        assert offsets == list(range(6))
        for offset in offsets:
            await eventually(
                lambda o=offset: _messages(http, o),
                until=lambda m: m == DONE,
                what=f"job {offset} done",
            )
    # both workers took part (six 0.6 s jobs scheduled at once spread over both consumers)
    finished = [w.log().count("job done offset=") for w in workers]
    assert sum(finished) == 6, finished
    assert all(finished), finished


async def test_a_subscriber_sees_every_reply_of_its_job_live_on_the_topic(cluster, amqp_url):
    gateway, _ = cluster
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection, httpx.AsyncClient(base_url=gateway.url) as http:
        channel = await connection.channel()
        exchange = await channel.get_exchange("jobcast.replies")
        everything = await channel.declare_queue(exclusive=True)
        await everything.bind(exchange, "reply.*")
        # the job's offset will be 0: bind to its key before scheduling it
        one_job = await channel.declare_queue(exclusive=True)
        await one_job.bind(exchange, "reply.0")

        offset = (await http.post("/schedule", json=JOB)).json()["offset"]
        assert offset == 0
        replies = [await _next_json(one_job) for _ in range(4)]
        other = (await http.post("/schedule", json=JOB)).json()["offset"]
        await eventually(lambda: _messages(http, other), until=lambda m: m == DONE)

        assert [(r["offset"], r["seq"], r["kind"], r["value"]) for r in replies] == [
            (0, 0, "result", "result1"),
            (0, 1, "result", "result2"),
            (0, 2, "result", "result3"),
            (0, 3, "done", "done"),
        ]
        assert all("produced_at" in r for r in replies)
        # reply.* sees both jobs; reply.0 saw only its own
        seen = {(r["offset"], r["seq"]) for r in [await _next_json(everything) for _ in range(8)]}
        assert seen == {(o, s) for o in (0, 1) for s in range(4)}
        assert await one_job.get(fail=False) is None


async def test_amqp_submission_is_answered_with_the_offset(cluster, amqp_url):
    gateway, _ = cluster
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection, httpx.AsyncClient(base_url=gateway.url) as http:
        channel = await connection.channel()
        callback = await channel.declare_queue(exclusive=True)
        correlation_id = uuid.uuid4().hex
        await channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps(JOB),
                content_type="application/json",
                reply_to=callback.name,
                correlation_id=correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="jobcast.schedule",
        )
        answer = await _next_message(callback)
        assert answer.correlation_id == correlation_id
        offset = orjson.loads(answer.body)["offset"]
        await eventually(lambda: _messages(http, offset), until=lambda m: m == DONE)


async def test_amqp_submission_without_reply_to_still_runs(cluster, amqp_url):
    gateway, _ = cluster
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection, httpx.AsyncClient(base_url=gateway.url) as http:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps(JOB), content_type="application/json"),
            routing_key="jobcast.schedule",
        )
        await eventually(lambda: _messages(http, 0), until=lambda m: m == DONE)


async def _messages(http: httpx.AsyncClient, offset: int) -> object:
    response = await http.get(f"/messages/{offset}")
    return response.json() if response.status_code == 200 else response.status_code


async def _next_message(queue: aio_pika.abc.AbstractQueue, timeout: float = 15.0):
    async with asyncio.timeout(timeout):
        while True:
            message = await queue.get(fail=False, no_ack=True)
            if message is not None:
                return message
            await asyncio.sleep(0.02)


async def _next_json(queue: aio_pika.abc.AbstractQueue) -> dict:
    return orjson.loads((await _next_message(queue)).body)

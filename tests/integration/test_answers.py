"""Answers to AMQP requests (a submission's offset, a cancel's state, a worker's resume point)
go to the sender's reply_to, which the sender chose: on the real broker, gateway and worker in
one app, an answer RabbitMQ cannot deliver must cost the answer alone."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from contracts import ProgressQuery
from contracts.topology import (
    BATCH_QUEUE,
    CANCEL_QUEUE,
    DIRECT_REPLY_TO,
    PROGRESS_EXCHANGE,
    SCHEDULE_QUEUE,
)
from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}

CHOKING_REPLY_TO = "amq.rabbitmq.reply-to.g1h2AAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA=="
"""Shaped like a direct reply-to address but naming no channel: RabbitMQ 3.10 closes the
*connection* that publishes to it (541 INTERNAL_ERROR), not just the channel."""


@pytest.fixture
async def http(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # a cap of 1: a job whose delivery was lost with its connection fails as a crash loop
    settings = Settings(
        amqp_url=amqp_url,
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        step_seconds=0.5,
        max_deliveries=1,
    )
    app = create_app(settings, with_worker=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            yield client


async def _record(http: httpx.AsyncClient, offset: int) -> dict[str, Any]:
    answer = await http.get(f"/jobs/{offset}")
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


async def test_a_reply_to_rabbitmq_chokes_on_costs_no_running_job_its_delivery(http, amqp_url):
    # Found by review: answers went out on the connection the gateway consumes and publishes
    # jobs on (and, under serve, the worker runs them on); one request with such a reply_to
    # closed it, every delivery on it went back, and a running job counted a crash
    offset = (await http.post("/schedule", json=JOB)).json()["offset"]
    await eventually(
        lambda: _record(http, offset), until=lambda r: r["replies"], what="the first step"
    )
    requests = [
        (SCHEDULE_QUEUE.name, JOB),
        (BATCH_QUEUE.name, {"jobs": [JOB]}),
        (CANCEL_QUEUE.name, {"offset": 10**6}),
    ]
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        for queue, body in requests:
            message = aio_pika.Message(json.dumps(body).encode(), reply_to=CHOKING_REPLY_TO)
            await channel.default_exchange.publish(message, routing_key=queue)
        resume = await channel.get_exchange(PROGRESS_EXCHANGE.name, ensure=False)
        question = ProgressQuery(offset=offset).model_dump_json().encode()
        await resume.publish(aio_pika.Message(question, reply_to=CHOKING_REPLY_TO), routing_key="")

    record = await eventually(
        lambda: _record(http, offset),
        until=lambda r: r["state"] in {"done", "failed"},
        timeout=30,
        what="the running job's end",
    )
    assert record["state"] == "done", record
    # and the requests were handled: the submitted jobs exist and end too
    for later in (offset + 1, offset + 2):
        ended = await eventually(
            lambda o=later: _record(http, o),
            until=lambda r: r["state"] in {"done", "failed"},
            timeout=30,
            what=f"job {later}'s end",
        )
        assert ended["state"] == "done", ended
    # answers come back once the answers' connection has: a retry with its key gets one
    answer = await eventually(lambda: _submit(amqp_url), until=bool, what="an answer")
    assert json.loads(answer)["offset"] == offset + 3


async def _submit(amqp_url: str) -> bytes | None:
    """Submit one job (always the same key) with direct reply-to; its answer, if one came."""
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_answer(answer: aio_pika.abc.AbstractIncomingMessage) -> None:
            answered.set_result(answer.body)

        replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(on_answer, no_ack=True)
        message = aio_pika.Message(
            json.dumps(JOB).encode(), reply_to=DIRECT_REPLY_TO, message_id="after-the-choke"
        )
        await channel.default_exchange.publish(message, routing_key=SCHEDULE_QUEUE.name)
        try:
            return await asyncio.wait_for(answered, 2)
        except TimeoutError:
            return None

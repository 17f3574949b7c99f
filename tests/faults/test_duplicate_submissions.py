"""Duplicate submissions: the same Idempotency-Key (HTTP) or message_id (AMQP) schedules once."""

import asyncio

import aio_pika
import httpx
import orjson

from contracts.topology import SCHEDULE_QUEUE
from tests.faults.conftest import Cluster

REQUEST = {"deployment": "faults", "framework": "retry", "fn": "counted"}


async def _submit_over_amqp(url: str, message_id: str, times: int) -> list[dict[str, object]]:
    """Publish the same request `times` times with one message_id; collect every answer."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        callback = await channel.declare_queue(exclusive=True)
        for n in range(times):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    orjson.dumps(REQUEST),
                    message_id=message_id,
                    reply_to=callback.name,
                    correlation_id=f"try-{n}",
                ),
                routing_key=SCHEDULE_QUEUE.name,
            )
        answers = []
        async with callback.iterator(timeout=20) as incoming:
            async for answer in incoming:
                answers.append(orjson.loads(answer.body))
                if len(answers) == times:
                    break
    return answers


async def test_the_same_key_returns_the_same_offset_and_schedules_nothing_new(cluster: Cluster):
    cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 1)
    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url, timeout=30) as http:
        key = {"Idempotency-Key": "order-42"}
        answers = await asyncio.gather(
            *(http.post("/schedule", json=REQUEST, headers=key) for _ in range(5))
        )
        assert {a.status_code for a in answers} == {200}
        offsets = {a.json()["offset"] for a in answers}
        assert len(offsets) == 1, offsets
        # the same key with another request is a conflict, not a silent reuse
        other = await http.post("/schedule", json={**REQUEST, "fn": "flaky"}, headers=key)
        assert other.status_code == 409
        assert "order-42" in other.json()["detail"]

    amqp = await _submit_over_amqp(cluster.env["JOBCAST_AMQP_URL"], "invoice-7", times=3)
    amqp_offsets = {a["offset"] for a in amqp}
    assert len(amqp_offsets) == 1, amqp
    assert amqp_offsets.isdisjoint(offsets)

    cluster.checker.handed_out |= offsets | amqp_offsets
    await cluster.checker.wait_until_final(timeout=30)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()  # a second job for a repeated key would count as unexpected
    assert verdict.states == {"done": 2}
    executed = {(o, s) for o, s, *_ in cluster.checker.executions()}
    assert {o for o, _ in executed} == offsets | amqp_offsets
    assert len([e for e in cluster.checker.executions() if e[4] == "finish"]) == 2 * 3

"""Scenario 6: poison on jobcast.jobs and jobcast.schedule is dead-lettered; the queues move on.

A poison body over DEAD_LETTER_BODY_LIMIT lands cut to that limit, its headers saying so."""

import aio_pika
import orjson

from contracts.headers import HEADER_ORIGINAL_SIZE, HEADER_SIGNATURE, HEADER_TRUNCATED
from contracts.signing import DEVELOPMENT_KEY, Signer
from contracts.topology import DEAD_LETTER_BODY_LIMIT, JOBS_QUEUE, SCHEDULE_QUEUE
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually

HUGE = 2 * 1024 * 1024
GATEWAY = Signer(DEVELOPMENT_KEY)  # the cluster's processes run with the development key

POISON = {
    "malformed": b'{"offset": 1, "request": {"fn": ',
    "wrong-schema": orjson.dumps({"offset": "seven", "request": {"fn": 3}, "colour": "red"}),
    "huge": b"[" + b"0," * (HUGE // 2) + b"0]",
}
SCHEDULE_POISON = {
    "malformed": b"deployment=Docker&fn=default_fn",
    "wrong-schema": orjson.dumps({"deployment": "Docker", "framework": 7, "extra": True}),
    "huge": orjson.dumps({"deployment": "D" * HUGE, "framework": "F", "fn": "counted"}),
}


async def _publish_poison(url: str) -> None:
    """Publish every poison message, named by its message_id `<queue>:<kind>`."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue, messages in ((JOBS_QUEUE, POISON), (SCHEDULE_QUEUE, SCHEDULE_POISON)):
            for kind, body in messages.items():
                # NOTE: jobs signed as a broken gateway would (unsigned ones are refused before
                # they are read, tests/faults/test_hostile_publisher.py)
                signed = {HEADER_SIGNATURE: GATEWAY.sign(body)} if queue is JOBS_QUEUE else {}
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        message_id=f"{queue.name}:{kind}",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=signed,
                    ),
                    routing_key=queue.name,
                )


async def _rpc_rejected(url: str) -> dict[str, str]:
    """A malformed AMQP submission with reply_to is answered with why it was refused."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        callback = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                b'{"deployment": "Docker"}',
                reply_to=callback.name,
                correlation_id="bad-1",
                message_id="jobcast.schedule:rpc-missing-fields",
            ),
            routing_key=SCHEDULE_QUEUE.name,
        )
        async with callback.iterator(timeout=20) as answers:
            async for answer in answers:
                return dict(orjson.loads(answer.body))
    raise AssertionError("no answer")


async def test_poison_is_dead_lettered_with_a_reason_and_the_queues_keep_moving(cluster: Cluster):
    cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 1)
    url = cluster.env["JOBCAST_AMQP_URL"]

    before = await cluster.checker.schedule(3)
    await _publish_poison(url)
    rejected = await _rpc_rejected(url)
    after = await cluster.checker.schedule(3)
    assert len(before) == len(after) == 3

    await cluster.checker.wait_until_final(timeout=60)

    async def queues_empty() -> dict[str, int]:
        depths = cluster.node.depths(cluster.vhost)
        return {q: depths.get(q, -1) for q in (JOBS_QUEUE.name, SCHEDULE_QUEUE.name)}

    await eventually(
        queues_empty,
        until=lambda d: set(d.values()) == {0},
        timeout=20,
        what="jobcast.jobs and jobcast.schedule drained",
    )
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": 6}

    assert rejected["error"] == "invalid_request"
    assert "framework" in rejected["detail"], rejected
    dead = {taken.message_id: taken for taken in verdict.dead}
    poisoned = {f"{JOBS_QUEUE.name}:{kind}": body for kind, body in POISON.items()}
    poisoned |= {f"{SCHEDULE_QUEUE.name}:{kind}": body for kind, body in SCHEDULE_POISON.items()}
    poisoned["jobcast.schedule:rpc-missing-fields"] = b'{"deployment": "Docker"}'
    assert sorted(dead) == sorted(poisoned), "each poison message dead-lettered exactly once"
    for message_id, body in poisoned.items():
        taken = dead[message_id]
        if len(body) > DEAD_LETTER_BODY_LIMIT:
            assert taken.body == body[:DEAD_LETTER_BODY_LIMIT], f"{message_id}: not cut"
            assert taken.headers[HEADER_TRUNCATED] is True
            assert taken.headers[HEADER_ORIGINAL_SIZE] == len(body)
        else:
            assert taken.body == body, f"{message_id}: body changed on the way to jobcast.dead"
            assert HEADER_TRUNCATED not in taken.headers
        assert taken.source == message_id.split(":")[0]
        assert taken.reason, f"{message_id} dead-lettered without a reason"
    assert "invalid job" in dead[f"{JOBS_QUEUE.name}:malformed"].reason
    for queue in (JOBS_QUEUE, SCHEDULE_QUEUE):  # refused unparsed
        assert dead[f"{queue.name}:huge"].reason.startswith("too large"), queue.name
    assert "invalid job request" in dead[f"{SCHEDULE_QUEUE.name}:wrong-schema"].reason

"""The least-privilege RabbitMQ users of deploy/rabbitmq/definitions.json, enforced by the real
broker: each role does its work and is refused the rest (README, Security; docs/security.md)."""

from collections.abc import Iterator

import aio_pika
import aiormq.exceptions
import httpx
import pytest

from contracts.errors import BrokerUnavailableError
from contracts.messages import Progress, ProgressQuery
from contracts.topology import PROGRESS_QUEUE
from harness.broker import Vhost
from messaging.declare import declare_topology
from messaging.rpc import request_reply
from tests.support.broker_users import BrokerUsers, imported_users
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]
REFUSED = aiormq.exceptions.ChannelAccessRefused


@pytest.fixture
def users(amqp_base_url: str, vhost: Vhost) -> Iterator[BrokerUsers]:
    with imported_users(amqp_base_url, vhost.name) as imported:
        yield imported


async def _refused(connection: aio_pika.abc.AbstractConnection, action) -> None:
    """`action(channel)` on a fresh channel is refused by the broker (403 ACCESS_REFUSED)."""
    channel = await connection.channel(publisher_confirms=True)
    with pytest.raises(REFUSED):
        await action(channel)


async def _consume(channel: aio_pika.abc.AbstractChannel, name: str) -> None:
    queue = await channel.declare_queue(name, passive=True)
    await queue.consume(_ignore)


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def _publish(channel, exchange: str, routing_key: str) -> None:
    target = channel.default_exchange if not exchange else await channel.get_exchange(exchange)
    await target.publish(aio_pika.Message(b"{}"), routing_key=routing_key)


async def test_a_worker_user_reads_jobs_only_and_writes_replies_only(users):
    # the gateway's user declares the topology; the worker's may not
    await declare_topology(users.url("jobcast-gateway"))
    worker = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker:
        await _refused(worker, lambda ch: _consume(ch, "jobcast.schedule"))
        await _refused(worker, lambda ch: _consume(ch, "jobcast.ledger"))
        await _refused(worker, lambda ch: _consume(ch, "jobcast.cancel"))
        await _refused(worker, lambda ch: ch.queue_delete("jobcast.jobs"))
        await _refused(
            worker, lambda ch: ch.declare_exchange("jobcast.replies", type="topic", durable=True)
        )
        # no control message (a cancel) from a worker, no reply under another routing key
        await _refused(worker, lambda ch: _publish(ch, "jobcast.control", ""))
        await _refused(worker, lambda ch: _publish(ch, "jobcast.replies", "jobs.0"))
        await _refused(
            worker, lambda ch: _bind_own(ch, "jobcast.replies", "reply.*")
        )  # no reading the reply topic

        # what it needs: consume jobcast.jobs, publish reply.<offset> and dead letters, and
        # through the default exchange its hand-back (onto jobcast.jobs) and progress question
        # (RabbitMQ cannot narrow the default exchange by routing key: README, Security)
        channel = await worker.channel(publisher_confirms=True)
        await _consume(channel, "jobcast.jobs")
        await _publish(channel, "jobcast.replies", "reply.0")
        await _publish(channel, "jobcast.dlx", "jobcast.jobs")
        await _publish(channel, "", "jobcast.jobs")
        await _publish(channel, "", "jobcast.progress")


async def _bind_own(channel, exchange: str, routing_key: str) -> aio_pika.abc.AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key=routing_key)
    return queue


async def test_a_subscriber_user_reads_reply_topics_only(users):
    await declare_topology(users.url("jobcast-gateway"))
    subscriber = await aio_pika.connect(users.url("jobcast-subscriber"))
    async with subscriber:
        await _refused(subscriber, lambda ch: _consume(ch, "jobcast.jobs"))
        await _refused(subscriber, lambda ch: _consume(ch, "jobcast.ledger"))
        await _refused(subscriber, lambda ch: _consume(ch, "jobcast.dead"))
        await _refused(subscriber, lambda ch: _bind_own(ch, "jobcast.replies", "#"))
        await _refused(subscriber, lambda ch: _bind_own(ch, "jobcast.dlx", ""))
        await _refused(subscriber, lambda ch: _publish(ch, "", "jobcast.schedule"))
        await _refused(subscriber, lambda ch: _publish(ch, "jobcast.replies", "reply.0"))
        channel = await subscriber.channel()
        await _bind_own(channel, "jobcast.replies", "reply.7")
        await _bind_own(channel, "jobcast.replies", "reply.*")


async def test_a_gateway_and_a_worker_run_a_job_as_their_least_privilege_users(
    spawn, jobcast_env, users
):
    # the worker starts first: it may not declare the topology, so it waits for the gateway's
    worker = spawn("worker", {**jobcast_env, "JOBCAST_AMQP_URL": users.url("jobcast-worker")})
    worker.wait_log("may not declare the topology")
    gateway = spawn("gateway", {**jobcast_env, "JOBCAST_AMQP_URL": users.url("jobcast-gateway")})
    gateway.wait_http()
    worker.wait_log("worker consuming")

    subscriber = await aio_pika.connect(users.url("jobcast-subscriber"))
    async with subscriber, httpx.AsyncClient(base_url=gateway.url) as http:
        follower = await _bind_own(await subscriber.channel(), "jobcast.replies", "reply.0")
        offset = (await http.post("/schedule", json=JOB)).json()["offset"]
        assert offset == 0
        messages = await eventually(
            lambda: _messages(http, offset), until=lambda m: m == DONE, what="job done"
        )
        assert messages == DONE
        seen = await eventually(
            lambda: _count(follower), until=lambda n: n == 4, what="4 replies on reply.0"
        )
        assert seen == 4

    # the progress RPC (direct reply-to), as the worker's user asks it of the gateway
    worker_connection = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker_connection:
        answer = await request_reply(
            worker_connection, ProgressQuery(offset=0), queue=PROGRESS_QUEUE, timeout=10
        )
    assert Progress.model_validate_json(answer).next_seq == 4


async def _messages(http: httpx.AsyncClient, offset: int) -> list[str]:
    answer = await http.get(f"/messages/{offset}")
    return list(answer.json()) if answer.status_code == 200 else []


async def _count(queue: aio_pika.abc.AbstractQueue) -> int:
    declared = await queue.channel.declare_queue(queue.name, passive=True)
    return declared.declaration_result.message_count or 0


async def test_a_worker_whose_topology_never_comes_says_what_is_missing(users, monkeypatch):
    monkeypatch.setattr("messaging.declare.TOPOLOGY_WAIT_SECONDS", 0.5)
    with pytest.raises(BrokerUnavailableError, match="start a gateway") as missing:
        await declare_topology(users.url("jobcast-worker"))
    assert "jobcast.dlx is not declared" in str(missing.value)

"""The least-privilege RabbitMQ users of deploy/rabbitmq/definitions.json, enforced by the real
broker: each role does its work and is refused the rest (README, Security; docs/security.md)."""

import asyncio
from collections.abc import Iterator

import aio_pika
import aiormq.exceptions
import httpx
import pytest

from contracts.errors import BrokerUnavailableError
from contracts.headers import HEADER_CRASHES, HEADER_REASON_CODE, HEADER_SIGNATURE, HEADER_SOURCE
from contracts.messages import Job, JobRequest, Progress, ProgressQuery
from contracts.signing import DEVELOPMENT_KEY, Signer
from contracts.topology import DELIVERY_LIMIT, PROGRESS_EXCHANGE
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


WORKER_WRITES = {
    # exchange: (routing key, the one queue it lands on)
    "jobcast.replies": ("reply.0", "jobcast.ledger"),
    "jobcast.dlx": ("jobcast.jobs", "jobcast.dead"),
    "jobcast.handback": ("jobcast.jobs", "jobcast.handed-back"),
    "jobcast.resume": ("jobcast.jobs", "jobcast.progress"),
}
"""Every exchange a worker's user may publish to, and where what it publishes lands."""
OTHER_EXCHANGES = ("", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match")


async def test_a_worker_user_reads_jobs_only_and_writes_replies_only(users):
    # the gateway's user declares the topology; the worker's may not
    await declare_topology(users.url("jobcast-gateway"))
    worker = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker:
        for queue in ("schedule", "ledger", "cancel", "handed-back", "progress", "dead"):
            await _refused(worker, lambda ch, q=queue: _consume(ch, f"jobcast.{q}"))
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
        # no job from a worker: not through the default exchange (which RabbitMQ cannot narrow
        # by routing key), nor any other exchange, nor by binding jobcast.jobs to one it writes
        for exchange in OTHER_EXCHANGES:
            await _refused(worker, lambda ch, e=exchange: _publish(ch, e, "jobcast.jobs"))
        await _refused(worker, lambda ch: _publish(ch, "", "jobcast.progress"))
        for exchange in WORKER_WRITES:
            await _refused(worker, lambda ch, e=exchange: _bind(ch, "jobcast.jobs", e))
            await _refused(worker, lambda ch, e=exchange: _bind(ch, "jobcast.handed-back", e))

        # what it needs: consume jobcast.jobs, publish reply.<offset>, dead letters, hand-backs
        # and progress questions; each lands on its own queue, never on jobcast.jobs
        channel = await worker.channel(publisher_confirms=True)
        await _consume(channel, "jobcast.jobs")
        await channel.close()
        channel = await worker.channel(publisher_confirms=True)
        for exchange, (routing_key, _) in WORKER_WRITES.items():
            await _publish(channel, exchange, routing_key)
    gateway = await aio_pika.connect(users.url("jobcast-gateway"))
    async with gateway:
        channel = await gateway.channel()
        landed = {q: await _depth(channel, q) for _, q in WORKER_WRITES.values()}
        assert landed == {q: 1 for _, q in WORKER_WRITES.values()}
        assert await _depth(channel, "jobcast.jobs") == 0


async def _bind(channel, queue: str, exchange: str) -> None:
    bound = await channel.get_queue(queue, ensure=False)
    await bound.bind(exchange, routing_key="#")


async def _depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    declared = await channel.declare_queue(name, passive=True)
    return declared.declaration_result.message_count or 0


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


async def test_a_gateway_and_workers_run_a_job_as_their_least_privilege_users(
    spawn, jobcast_env, users, amqp_url
):
    # a cap of 1: a hand-back that did not go through (the job requeued instead) would count
    # as a crash, and the next worker would fail the job as a crash loop
    env = {**jobcast_env, "JOBCAST_STEP_SECONDS": "1", "JOBCAST_MAX_DELIVERIES": "1"}
    # the worker starts first: it may not declare the topology, so it waits for the gateway's
    worker = spawn("worker", {**env, "JOBCAST_AMQP_URL": users.url("jobcast-worker")})
    worker.wait_log("may not declare the topology")
    gateway = spawn("gateway", {**env, "JOBCAST_AMQP_URL": users.url("jobcast-gateway")})
    gateway.wait_http()
    worker.wait_log("worker consuming")

    subscriber = await aio_pika.connect(users.url("jobcast-subscriber"))
    async with subscriber, httpx.AsyncClient(base_url=gateway.url) as http:
        follower = await _bind_own(await subscriber.channel(), "jobcast.replies", "reply.0")
        offset = (await http.post("/schedule", json=JOB)).json()["offset"]
        assert offset == 0
        await eventually(lambda: _messages(http, offset), what="the first step recorded")
        # stopped mid-job, the worker hands the job back (through the gateway, which puts it
        # back on jobcast.jobs), and the next worker asks where it resumes (the progress RPC)
        assert await asyncio.to_thread(worker.terminate, 30) == 0, worker.log()
        assert "handed back" in worker.log()
        assert (await _messages(http, offset)) != DONE
        again = spawn("worker", {**env, "JOBCAST_AMQP_URL": users.url("jobcast-worker")})
        messages = await eventually(
            lambda: _messages(http, offset), until=lambda m: m == DONE, what="job done"
        )
        assert messages == DONE
        # each step ran once: the next worker resumed after the last one recorded
        seen = await eventually(
            lambda: _count(follower), until=lambda n: n >= 4, what="4 replies on reply.0"
        )
        assert seen == 4
        assert "no resume point" not in again.log()

    # the progress RPC (direct reply-to), as the worker's user asks it of the gateway
    worker_connection = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker_connection:
        answer = await request_reply(
            worker_connection, ProgressQuery(offset=0), exchange=PROGRESS_EXCHANGE, timeout=10
        )
    assert Progress.model_validate_json(answer).next_seq == 4


async def test_a_forged_hand_back_is_dead_lettered_and_never_becomes_a_job(
    spawn, jobcast_env, users, amqp_url
):
    gateway = spawn("gateway", {**jobcast_env, "JOBCAST_AMQP_URL": users.url("jobcast-gateway")})
    gateway.wait_http()
    job = Job(offset=0, request=JobRequest.model_validate(JOB)).model_dump_json().encode()
    signer = Signer(DEVELOPMENT_KEY)  # the gateway's: no JOBCAST_SIGNING_KEY on loopback
    forged = [
        (b"{}", {}),  # unsigned
        (job, {HEADER_SIGNATURE: "0" * 64, HEADER_CRASHES: 0}),  # signed by no gateway
        (b"not a job", {HEADER_SIGNATURE: signer.sign(b"not a job"), HEADER_CRASHES: 0}),
        (job, {HEADER_SIGNATURE: signer.sign(job), HEADER_CRASHES: "lots"}),
        (job, {HEADER_SIGNATURE: signer.sign(job), HEADER_CRASHES: -1}),
        (job, {HEADER_SIGNATURE: signer.sign(job), HEADER_CRASHES: DELIVERY_LIMIT + 1}),
        (job, {HEADER_SIGNATURE: signer.sign(job)}),  # no crash count: not a hand-back
    ]
    worker = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker:
        channel = await worker.channel(publisher_confirms=True)
        handback = await channel.get_exchange("jobcast.handback", ensure=False)
        for body, headers in forged:
            await handback.publish(aio_pika.Message(body, headers=headers), routing_key="")
    # NOTE: each look takes what is on jobcast.dead (no_ack), and the gateway dead-letters the
    # hand-backs side by side: gathered across looks, or a look in between leaves none whole
    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def gathered() -> int:
        dead.extend(await _dead_letters(amqp_url))
        return len(dead)

    await eventually(gathered, until=lambda n: n >= len(forged), what="all dead")
    # (in any order: the gateway checks hand-backs side by side)
    assert sorted((m.headers[HEADER_SOURCE], m.headers[HEADER_REASON_CODE]) for m in dead) == [
        ("jobcast.handed-back", reason)
        for reason in [*["invalid_hand_back"] * 4, "invalid_job", "unsigned", "unsigned"]
    ]
    async with await aio_pika.connect(amqp_url) as connection:
        assert await _depth(await connection.channel(), "jobcast.jobs") == 0


async def test_a_progress_question_cannot_make_the_gateway_publish_into_a_queue(
    spawn, jobcast_env, users, amqp_url
):
    # Found by review: the gateway answered a question on jobcast.resume at whatever reply_to
    # it named, through the default exchange its user may write: a worker's user (refused
    # the default exchange) had the gateway put a message on jobcast.jobs, or any queue
    gateway = spawn("gateway", {**jobcast_env, "JOBCAST_AMQP_URL": users.url("jobcast-gateway")})
    gateway.wait_http()
    targets = ["jobcast.jobs", "jobcast.schedule", "jobcast.handed-back", "jobcast.ledger"]
    worker = await aio_pika.connect(users.url("jobcast-worker"))
    async with worker:
        channel = await worker.channel(publisher_confirms=True)
        resume = await channel.get_exchange(PROGRESS_EXCHANGE.name, ensure=False)
        for queue in targets:
            question = ProgressQuery(offset=0).model_dump_json().encode()
            await resume.publish(aio_pika.Message(question, reply_to=queue), routing_key="")
        # questions are answered in order: once this one is, the others were handled
        answer = await request_reply(
            worker, ProgressQuery(offset=0), exchange=PROGRESS_EXCHANGE, timeout=10
        )
    assert Progress.model_validate_json(answer).next_seq == 0
    assert "dropped" in gateway.log()
    assert "Traceback" not in gateway.log()
    async with await aio_pika.connect(amqp_url) as connection:
        assert await _depth(await connection.channel(), "jobcast.jobs") == 0
    assert await _dead_letters(amqp_url) == []


async def _dead_letters(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).get_queue("jobcast.dead", ensure=False)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
        return found


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


async def test_a_worker_names_the_queue_it_cannot_find(users, amqp_url, monkeypatch):
    await declare_topology(users.url("jobcast-gateway"))
    async with await aio_pika.connect(amqp_url) as connection:
        await (await connection.channel()).queue_delete("jobcast.handed-back")
    monkeypatch.setattr("messaging.declare.TOPOLOGY_WAIT_SECONDS", 0.5)
    with pytest.raises(BrokerUnavailableError, match="start a gateway") as missing:
        await declare_topology(users.url("jobcast-worker"))
    assert "jobcast.handed-back is not declared" in str(missing.value)

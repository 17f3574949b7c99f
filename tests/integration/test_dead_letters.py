"""jobcast.dead on the real broker: bounded, and every copy jobcast makes can be traced back.

What an operator checks: a dead letter says where it came from, why, and who sent it
(message_id, correlation_id, reply_to, ...); 10 MB poison does not land whole; the queue keeps
the newest messages within its bounds; an upgrade over an unbounded jobcast.dead still starts.
"""

import datetime
import logging
import shlex
import struct
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import pamqp.encode
import pytest
from fastapi import FastAPI

from contracts.headers import (
    HEADER_DELIVERY_COUNT,
    HEADER_EXCHANGE,
    HEADER_ORIGINAL_SIZE,
    HEADER_REASON,
    HEADER_ROUTING_KEY,
    HEADER_SOURCE,
    HEADER_TRUNCATED,
    HEADER_USER_ID,
)
from contracts.topology import (
    DEAD_LETTER_BODY_LIMIT,
    DEAD_LETTER_EXCHANGE,
    DEAD_MAX_BYTES,
    DEAD_MAX_LENGTH,
    DEAD_QUEUE,
    JOBS_QUEUE,
    LEDGER_QUEUE,
    REPLIES_EXCHANGE,
    SCHEDULE_QUEUE,
    reply_key,
)
from harness.broker import Vhost
from jobcast.gateway import create_app
from jobcast.settings import Settings
from messaging.declare import declare_topology
from tests.support.waiting import eventually

TEN_MB = 10 * 1024 * 1024
JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


@dataclass(frozen=True)
class Dead:
    """One message taken from jobcast.dead."""

    message: aio_pika.abc.AbstractIncomingMessage

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})


async def take_dead(amqp_url: str) -> list[Dead]:
    """Take every message now in jobcast.dead."""
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).get_queue(DEAD_QUEUE.name, ensure=False)
        taken = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(Dead(message))
        return taken


async def dead_count(amqp_url: str) -> int:
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).declare_queue(DEAD_QUEUE.name, passive=True)
        return queue.declaration_result.message_count or 0


async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
            yield http


@pytest.fixture
async def serve(amqp_url: str, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Gateway and worker in this process: all three consumers that dead-letter."""
    settings = Settings(amqp_url=amqp_url, database_url=sqlite_url, step_seconds=0.05)
    async for http in running(create_app(settings, with_worker=True)):
        yield http


async def test_a_dead_letter_copy_keeps_what_traces_it_back(serve, amqp_url):
    sent_at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        callback = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                b'{"deployment": "Docker"}',
                message_id="submission-7",
                correlation_id="corr-7",
                reply_to=callback.name,
                timestamp=sent_at,
                app_id="billing",
                type="jobcast.JobRequest",
                content_type="application/json",
                content_encoding="utf-8",
                user_id="guest",
                headers={"tenant": "acme", "traceparent": "00-abc-def-01"},
            ),
            routing_key=SCHEDULE_QUEUE.name,
        )
        async with callback.iterator(timeout=20) as answers:
            async for answer in answers:
                assert b"invalid_request" in answer.body
                break

    [dead] = await eventually(lambda: take_dead(amqp_url), what="the submission dead-lettered")
    copy = dead.message
    assert copy.message_id == "submission-7"
    assert copy.correlation_id == "corr-7"
    assert copy.reply_to == callback.name
    assert copy.timestamp == sent_at
    assert copy.app_id == "billing"
    assert copy.type == "jobcast.JobRequest"
    assert (copy.content_type, copy.content_encoding) == ("application/json", "utf-8")
    assert copy.user_id is None, "user_id is validated against the copying connection"
    assert copy.body == b'{"deployment": "Docker"}'
    headers = dead.headers
    assert headers["tenant"] == "acme"
    assert headers["traceparent"] == "00-abc-def-01"
    assert "invalid job request" in headers[HEADER_REASON]
    assert headers[HEADER_SOURCE] == SCHEDULE_QUEUE.name
    assert headers[HEADER_EXCHANGE] == ""
    assert headers[HEADER_ROUTING_KEY] == SCHEDULE_QUEUE.name
    assert headers[HEADER_DELIVERY_COUNT] == 0
    assert headers[HEADER_USER_ID] == "guest"
    assert HEADER_TRUNCATED not in headers


async def test_ten_mb_poison_on_every_queue_lands_truncated_and_says_so(serve, amqp_url):
    poison = b"[" + b"0," * (TEN_MB // 2) + b"0]"
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.get_exchange(REPLIES_EXCHANGE.name)
        for exchange, routing_key in (
            (channel.default_exchange, JOBS_QUEUE.name),
            (channel.default_exchange, SCHEDULE_QUEUE.name),
            (replies, reply_key(1)),
        ):
            message = aio_pika.Message(
                poison, message_id=f"poison-{routing_key}", correlation_id="c-" + routing_key
            )
            await exchange.publish(message, routing_key=routing_key)

    dead = await eventually(
        lambda: take_dead(amqp_url),
        until=lambda found: len(found) == 3,
        timeout=60,
        what="three poison messages in jobcast.dead",
    )
    by_source = {d.headers[HEADER_SOURCE]: d for d in dead}
    assert sorted(by_source) == sorted([JOBS_QUEUE.name, SCHEDULE_QUEUE.name, LEDGER_QUEUE.name])
    for source, found in by_source.items():
        assert len(found.message.body) == DEAD_LETTER_BODY_LIMIT, source
        assert poison.startswith(found.message.body), source
        assert found.headers[HEADER_TRUNCATED] is True, source
        assert found.headers[HEADER_ORIGINAL_SIZE] == len(poison), source
        assert found.headers[HEADER_REASON], source
        assert found.message.correlation_id.startswith("c-"), source

    # and the queues kept moving
    offset = (await serve.post("/schedule", json=JOB)).json()["offset"]
    await eventually(
        lambda: serve.get(f"/jobs/{offset}"),
        until=lambda r: r.json()["state"] == "done",
        what="a job after the poison",
    )


class Raw(bytes):
    """A header value sent as exactly these bytes (type tag first), as another client may."""


DOUBLE = Raw(b"d" + struct.pack(">d", 1e300))
"""A double no 32-bit float holds (pamqp reads it as a float and writes floats as 32-bit)."""
NOT_UTF8 = Raw(b"S" + struct.pack(">I", 2) + b"\xff\xfe")
"""A long string that is not UTF-8 (pamqp reads it as bytes, which it cannot write)."""


async def test_header_values_jobcast_cannot_write_back_do_not_stop_a_dead_letter(
    serve, amqp_url, monkeypatch
):
    # Found by review: the dead-letter copy carries the original's headers, and pamqp cannot
    # write back every value it reads; the copy raised (OverflowError, TypeError), the message
    # went back to its queue until the delivery limit, and in the recorder the whole batch did
    original = pamqp.encode.encode_table_value
    monkeypatch.setattr(
        pamqp.encode,
        "encode_table_value",
        lambda value: bytes(value) if isinstance(value, Raw) else original(value),
    )
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.get_exchange(REPLIES_EXCHANGE.name)
        for exchange, routing_key in (
            (channel.default_exchange, JOBS_QUEUE.name),
            (channel.default_exchange, SCHEDULE_QUEUE.name),
            (replies, reply_key(1)),
        ):
            message = aio_pika.Message(
                b"{}", headers={"double": DOUBLE, "text": NOT_UTF8, "tenant": "acme"}
            )
            await exchange.publish(message, routing_key=routing_key)

    dead = await eventually(
        lambda: take_dead(amqp_url),
        until=lambda found: len(found) == 3,
        timeout=60,
        what="three messages in jobcast.dead",
    )
    for found in dead:
        assert found.headers[HEADER_REASON], found.headers  # jobcast's copy, not RabbitMQ's
        assert found.headers["tenant"] == "acme"
    offset = (await serve.post("/schedule", json=JOB)).json()["offset"]
    await eventually(
        lambda: serve.get(f"/jobs/{offset}"),
        until=lambda r: r.json()["state"] == "done",
        what="a job after them",
    )


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def list_queue_arguments(vhost: str, name: str) -> str:
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")
    return next(line for line in out.splitlines() if line.startswith(name + "\t"))


async def test_the_bounds_of_jobcast_dead_read_back_from_the_broker(amqp_url, vhost: Vhost):
    await declare_topology(amqp_url)

    line = list_queue_arguments(vhost.name, DEAD_QUEUE.name)
    assert f'{{"x-max-length",{DEAD_MAX_LENGTH}}}' in line
    assert f'{{"x-max-length-bytes",{DEAD_MAX_BYTES}}}' in line
    assert '{"x-overflow","drop-head"}' in line
    assert '{"x-queue-type","quorum"}' in line


async def test_filling_jobcast_dead_past_its_length_bound_keeps_the_newest(amqp_url, monkeypatch):
    # NOTE: the real declaration with its length bound made small, for this throwaway vhost.
    assert DEAD_QUEUE.arguments.get("x-max-length") == DEAD_MAX_LENGTH
    monkeypatch.setitem(DEAD_QUEUE.arguments, "x-max-length", 3)
    await declare_topology(amqp_url)

    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE.name)
        for n in range(8):
            await dlx.publish(aio_pika.Message(f"dead-{n}".encode()), routing_key="jobcast.jobs")

    assert [d.message.body for d in await take_dead(amqp_url)] == [b"dead-5", b"dead-6", b"dead-7"]


async def test_an_old_unbounded_jobcast_dead_does_not_stop_a_gateway(
    amqp_url, vhost: Vhost, sqlite_url, caplog: pytest.LogCaptureFixture
):
    # as jobcast declared it before it was bounded, with a dead letter still in it
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        old = await channel.declare_queue(
            DEAD_QUEUE.name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await channel.default_exchange.publish(aio_pika.Message(b"old"), routing_key=old.name)

    caplog.set_level(logging.WARNING)
    settings = Settings(amqp_url=amqp_url, database_url=sqlite_url, step_seconds=0.05)
    async for http in running(create_app(settings, with_worker=True)):
        assert (await http.get("/ready")).json()["ready"] is True
        # dead-lettering still works, into the old queue
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                aio_pika.Message(b"not a job"), routing_key=JOBS_QUEUE.name
            )
        await eventually(lambda: dead_count(amqp_url), until=lambda n: n == 2, what="2 dead")

    [migrate] = [
        r.getMessage() for r in caplog.records if "rabbitmqctl set_policy" in r.getMessage()
    ]
    assert f"rabbitmqctl delete_queue -p {vhost.name} jobcast.dead" in migrate
    # the policy it suggests is one this RabbitMQ takes, and it applies to the old queue
    suggested = migrate[
        migrate.index("rabbitmqctl set_policy") : migrate.index("--apply-to queues")
    ]
    rabbitmqctl(*shlex.split(suggested)[1:], "--apply-to", "queues")
    policies = rabbitmqctl("list_queues", "-p", vhost.name, "name", "policy")
    assert f"{DEAD_QUEUE.name}\tjobcast-dead" in policies

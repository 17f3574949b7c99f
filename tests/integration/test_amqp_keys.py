"""Submissions over AMQP with JOBCAST_AUTH=on carry their API key (x-jobcast-key): without a
valid one they are refused `unauthorized` and dead-lettered (without the key); with one, the job
belongs to that key. On the real broker, gateway and worker in one app."""

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from contracts import JobAccepted, ScheduleRejected
from contracts.batches import BatchAccepted
from contracts.control import CancelAccepted, CancelRejected
from contracts.headers import HEADER_KEY, HEADER_REASON_CODE
from contracts.principals import digest
from contracts.topology import BATCH_QUEUE, CANCEL_QUEUE, DEAD_QUEUE, SCHEDULE_QUEUE, Queue
from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
ALICE, BOB, GONE = "jck_alice-secret-for-tests", "jck_bob-secret-for-tests", "jck_gone-secret"


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Any]:
    settings = Settings(
        amqp_url=amqp_url,
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        step_seconds=0,
        auth="on",
    )
    app = create_app(settings, with_worker=True)
    async with app.router.lifespan_context(app):
        ledger = app.state.ledger
        await ledger.add_key("alice", digest(ALICE), False)
        await ledger.add_key("bob", digest(BOB), False)
        await ledger.add_key("gone", digest(GONE), False)
        await ledger.revoke_key("gone")
        yield app


async def ask(amqp_url: str, queue: Queue, body: object, key: str | None) -> bytes:
    """Publish `body` on `queue` with reply_to (and the key, if any); the answer's body."""
    headers = {} if key is None else {HEADER_KEY: key}
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        answers = await channel.declare_queue(exclusive=True)
        message = aio_pika.Message(
            json.dumps(body).encode(), headers=headers, reply_to=answers.name, correlation_id="c"
        )
        await channel.default_exchange.publish(message, routing_key=queue.name)
        async with answers.iterator(timeout=30) as messages:
            async for answer in messages:
                await answer.ack()
                return answer.body
    raise AssertionError("no answer")


async def dead_letters(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).get_queue(DEAD_QUEUE.name, ensure=False)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
        return found


OURS = {"jobcast", "producer", "messaging", "query", "ledger", "observability", "contracts"}
REFUSALS = [(None, "no API key"), ("jck_never-made", "unknown API key"), (GONE, "revoked")]


@pytest.mark.parametrize(("queue", "body"), [(SCHEDULE_QUEUE, JOB), (BATCH_QUEUE, {"jobs": [JOB]})])
async def test_a_submission_without_a_valid_key_is_refused_and_dead_lettered_without_it(
    gateway: Any, amqp_url: str, caplog: pytest.LogCaptureFixture, queue: Queue, body: object
) -> None:
    caplog.set_level(logging.DEBUG)
    for key, why in REFUSALS:
        refused = ScheduleRejected.model_validate_json(await ask(amqp_url, queue, body, key))
        assert refused.error == "unauthorized"
        assert why in refused.detail
    dead = await eventually(
        lambda: dead_letters(amqp_url), until=lambda found: len(found) >= 3, what="3 dead"
    )
    assert [m.headers[HEADER_REASON_CODE] for m in dead] == ["unauthorized"] * 3
    assert all(HEADER_KEY not in m.headers for m in dead)
    # NOTE: jobcast's own lines; this test's sending client logs its own frames at DEBUG, key
    # included (tests/e2e/test_read_token_logs.py reads a gateway process's every line).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in OURS)
    assert "dead-lettering" in ours
    assert GONE not in ours
    assert "jck_never-made" not in ours
    accepted = JobAccepted.model_validate_json(await ask(amqp_url, SCHEDULE_QUEUE, JOB, ALICE))
    assert accepted.offset == 0  # the refused took no offset


async def test_a_submission_with_a_key_is_that_keys_job(gateway: Any, amqp_url: str) -> None:
    ledger = gateway.state.ledger
    one = JobAccepted.model_validate_json(await ask(amqp_url, SCHEDULE_QUEUE, JOB, ALICE))
    assert await ledger.job_owner(one.offset) == "alice"
    batch = {"jobs": [JOB, JOB], "batch": "b"}
    many = BatchAccepted.model_validate_json(await ask(amqp_url, BATCH_QUEUE, batch, BOB))
    assert [await ledger.job_owner(offset) for offset in many.offsets] == ["bob", "bob"]


async def test_a_cancel_needs_the_key_that_owns_the_job(gateway: Any, amqp_url: str) -> None:
    later = {**JOB, "delay_seconds": 600}
    offset = JobAccepted.model_validate_json(
        await ask(amqp_url, SCHEDULE_QUEUE, later, ALICE)
    ).offset
    cancel = {"offset": offset}
    for key, why in REFUSALS:
        refused = CancelRejected.model_validate_json(await ask(amqp_url, CANCEL_QUEUE, cancel, key))
        assert (refused.error, why in refused.detail) == ("unauthorized", True)
    # another key's job is answered as an offset never handed out: nothing to learn
    never = CancelRejected.model_validate_json(
        await ask(amqp_url, CANCEL_QUEUE, {"offset": offset + 1000}, BOB)
    )
    other = CancelRejected.model_validate_json(await ask(amqp_url, CANCEL_QUEUE, cancel, BOB))
    assert other.error == never.error == "unknown_offset"
    assert other.detail == never.detail.replace(str(offset + 1000), str(offset))
    accepted = CancelAccepted.model_validate_json(await ask(amqp_url, CANCEL_QUEUE, cancel, ALICE))
    assert accepted.state == "cancelled"


async def test_with_auth_off_no_key_is_needed(tmp_path: Path, amqp_url: str) -> None:
    settings = Settings(amqp_url=amqp_url, database_url=f"sqlite:///{tmp_path / 'l.db'}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        accepted = JobAccepted.model_validate_json(await ask(amqp_url, SCHEDULE_QUEUE, JOB, None))
        assert await app.state.ledger.job_owner(accepted.offset) is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
            assert (await http.get(f"/jobs/{accepted.offset}")).status_code == 200
